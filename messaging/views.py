"""The dashboard's "Events" page (the stored event log, newest first, filtered like ``/v1/events``) and its
"Live" page (subscribe to a topic pattern and watch messages arrive over ``/ws/push``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from hub.pages.access import staff_required
from hub.timefmt import parse_utc
from messaging.selectors import events_filter

EVENTS_PER_PAGE = 50
#: Hidden unless asked for: the radio's readings arrive every few minutes per node and bury everything else, and each
#: reading of a room's sensor also updates its retained temperature topic (heating.room_state).
NOISY_EVENT_TYPES = ("heating.reading", "heating.room_state")


@staff_required
def events_page(request):
    params = request.GET
    # "heating.*" is read as the prefix "heating", what the hint in the field suggests.
    type_prefix = params.get("type", "").strip().removesuffix("*").rstrip(".") or None
    # Asking for a hidden type by name shows it, checkbox or not.
    show_noisy = params.get("noisy") == "show" or type_prefix in NOISY_EVENT_TYPES
    filters = {
        "type_prefix": type_prefix,
        "source": params.get("source", "").strip() or None,
        "exclude_types": () if show_noisy else NOISY_EVENT_TYPES,
    }
    errors = {}
    for name in ("since", "until"):
        raw = params.get(name, "").strip()
        if not raw:
            continue
        try:
            filters[name] = parse_utc(raw)
        except ValueError as exc:
            errors[name] = str(exc)
    page = Paginator(events_filter(**filters), EVENTS_PER_PAGE).get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    return render(
        request,
        "messaging/events.html",
        {
            "page": page,
            "filters": params,
            "errors": errors,
            "query": query.urlencode(),
            "show_noisy": show_noisy,
            "noisy_types": NOISY_EVENT_TYPES,
        },
    )


#: How many messages the Live page keeps on screen; older ones scroll away.
LIVE_MESSAGES_SHOWN = 200


@login_required
def live_page(request):
    # Everything happens in the browser (static/js/push.js); the server-side check is /ws/push's, per frame.
    return render(
        request,
        "messaging/live.html",
        {"initial_filter": request.GET.get("topic", "").strip(), "messages_shown": LIVE_MESSAGES_SHOWN},
    )
