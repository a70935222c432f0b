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


@staff_required
def events_page(request):
    params = request.GET
    filters = {
        "type_prefix": params.get("type", "").strip() or None,
        "source": params.get("source", "").strip() or None,
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
        {"page": page, "filters": params, "errors": errors, "query": query.urlencode()},
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
