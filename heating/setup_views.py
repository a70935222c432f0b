"""The staff's room set-up pages (``/setup/rooms/``: list, add, edit, delete) and the house's away switch.

Thin: a Django form shapes the input, the heating services check and store it (the same rules, node locations,
events and MQTT topics as the admin and the API), and a refusal (``RoomInputError``) is shown next to the field it
names. The pages live under ``/setup/`` because ``/rooms/<id>/`` is a room's own page and any word could be an id.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from heating.models import Room
from heating.page_state import CONTROL_PERMISSION
from heating.selectors import house
from heating.services import RoomInputError, house_away_set, room_create, room_delete, room_heaters_set, room_update
from heating.setup_forms import RoomSetupForm
from hub.pages.access import staff_required

ORIGIN = "page"
_AWAY_VALUES = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


@staff_required
def rooms_setup(request):
    rooms = Room.objects.select_related("temperature_node").prefetch_related("heaters__node")
    return render(request, "heating/setup_rooms.html", {"rooms": rooms})


@staff_required
def room_add(request):
    form = RoomSetupForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        room = _save(form, request.user, room=None)
        if room is not None:
            messages.success(request, f"{room.name} added: it is on the home page.")
            return redirect("rooms-setup")
    return render(request, "heating/setup_room_form.html", {"form": form, "room": None}, status=_status(form))


@staff_required
def room_edit(request, slug: str):
    room = get_object_or_404(Room, slug=slug)
    form = RoomSetupForm(_posted(request), room=room)
    if request.method == "POST" and form.is_valid():
        saved = _save(form, request.user, room=room)
        if saved is not None:
            messages.success(request, f"{saved.name} saved.")
            return redirect("rooms-setup")
    return render(request, "heating/setup_room_form.html", {"form": form, "room": room}, status=_status(form))


@staff_required
def room_remove(request, slug: str):
    room = get_object_or_404(Room, slug=slug)
    if request.method == "POST":
        name = room.name
        room_delete(room=room, by=request.user)
        messages.success(request, f"{name} deleted.")
        return redirect("rooms-setup")
    return render(request, "heating/setup_room_delete.html", {"room": room, "heaters": room.heaters.count()})


def _posted(request):
    # A POST binds the form even when empty (then every required field says so).
    return request.POST if request.method == "POST" else None


def _status(form: RoomSetupForm) -> int:
    # A refused form is a 400 (as the API's refusals), so a script posting it sees it was not stored.
    return 400 if form.is_bound and form.errors else 200


def _save(form: RoomSetupForm, user, *, room: Room | None) -> Room | None:
    """The form's room stored through the services, all or nothing; None (and the error on its field) if refused."""
    node, endpoint = form.temperature()
    fields = {"name": form.cleaned_data["name"], "slug": form.cleaned_data["slug"], **form.presets()}
    try:
        with transaction.atomic():
            if room is None:
                room = room_create(
                    slug=fields.pop("slug"),
                    name=fields.pop("name"),
                    temperature_node=node,
                    temperature_endpoint=endpoint,
                    by=user,
                )
            else:
                fields.update(temperature_node=node, temperature_endpoint=endpoint)
            room = room_update(room=room, by=user, **fields)
            wanted = form.heaters_wanted()
            current = sorted((h.node_id, h.endpoint, h.power_w) for h in room.heaters.all())
            if sorted((n.pk, e, w) for n, e, w in wanted) != current:
                room_heaters_set(room=room, heaters=wanted, by=user)
    except RoomInputError as error:
        form.add_input_error(error)
        return None
    return room


@login_required
@require_POST
def house_away(request):
    """The house's away switch (POST ``away=on|off``): JSON for the home page's script, else back to the page."""
    if not request.user.has_perm(CONTROL_PERMISSION):
        return _away_answer(request, 403, "You may not change the heating: ask a staff member for control.")
    away = _AWAY_VALUES.get(str(request.POST.get("away", "")).strip().lower())
    if away is None:
        return _away_answer(request, 400, "away must be on or off.")
    house_away_set(away=away, by=request.user, origin=ORIGIN)
    return _away_answer(request, 200, "")


def _away_answer(request, status: int, problem: str) -> HttpResponse:
    away = house().away
    if "application/json" in request.headers.get("Accept", ""):
        answer = {"away": away}
        if problem:
            answer = {"message": problem, "fields": {"away": [problem]}}
        return JsonResponse(answer, status=status)
    if problem:
        return HttpResponse(problem, status=status, content_type="text/plain; charset=utf-8")
    return redirect("home")
