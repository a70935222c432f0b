"""The heating app's pages: the home page (a tile per room), a room page (chart, week, decisions, alerts), and the
staff's Devices page (every radio node with its latest values, signal and state, and a switch per output).

Each page is rendered server side and has a JSON twin (``…/state``) the browser fetches again when a ``heating.*``
event arrives over ``/ws/push`` (and every 30 s, should the socket be down), patching what changed in place.
Changes go through the REST API with the session (``PATCH /v1/rooms/{id}``, ``POST /v1/rooms/{id}/boost``,
``PUT /v1/rooms/{id}/schedule``, ``POST /v1/nodes/{id}/commands``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from heating.models import Room
from heating.page_state import MODE_LABELS, house_state, radio_state, room_page_state
from heating.selectors import heating_overview
from hub.pages.access import staff_required
from hub.roles import user_is_staff

_MODES = [(str(mode), label) for mode, label in MODE_LABELS.items()]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@login_required
def home(request):
    house = house_state(user=request.user, at=timezone.now())
    context = {"house": house, "modes": _MODES, "is_staff": user_is_staff(request.user)}
    return render(request, "heating/home.html", context)


@login_required
def home_state(request):
    return JsonResponse(house_state(user=request.user, at=timezone.now()))


@login_required
def room_page(request, slug: str):
    room = get_object_or_404(Room, slug=slug)
    state = room_page_state(room, user=request.user, at=timezone.now())
    context = {
        "page": state,
        "room": state["room"],
        "modes": _MODES,
        "weekdays": _WEEKDAYS,
        "is_staff": user_is_staff(request.user),
    }
    return render(request, "heating/room.html", context)


@login_required
def room_state(request, slug: str):
    room = get_object_or_404(Room, slug=slug)
    return JsonResponse(room_page_state(room, user=request.user, at=timezone.now()))


def _devices(user) -> dict:
    return {**heating_overview(user=user), "radio": radio_state(at=timezone.now())}


@staff_required
def devices_page(request):
    return render(request, "heating/devices.html", {"overview": _devices(request.user)})


@staff_required
def devices_state(request):
    return JsonResponse(_devices(request.user))


def heating_moved(request):
    # The old Heating page: rooms are on the home page now, the node cards on the staff's Devices page.
    return redirect("home", permanent=True)
