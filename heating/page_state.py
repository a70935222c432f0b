"""What the household's pages show, JSON-ready: the home page's room tiles, a room page's details, and the hub's
honest state (is the radio link up, is the worker reporting), built from ``heating.selectors``.

The pages render this server side and fetch the same dict again when a ``heating.*`` event arrives over
``/ws/push``; the browser patches only the values that changed. Every text a tile shows is made here, once
("21.6 °C", "Heating now", "No reading since …"), so the first render and the live patches always agree.
Times are UTC ISO strings (``format_utc``); the browser shows them in the viewer's zone (static/js/time.js).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.urls import reverse

from heating import selectors
from heating.models import Mode, Room
from heating.services import TARGET_BELOW_MAXIMUM
from hub.timefmt import format_utc

#: The permission that lets a user change targets, modes, boosts and schedules.
CONTROL_PERMISSION = "heating.control"
#: One press of plus or minus on a target.
TARGET_STEP = 0.5
BOOST_MINUTES = 60
MODE_LABELS = {Mode.OFF: "Off", Mode.MANUAL: "Manual", Mode.SCHEDULE: "Schedule"}
#: What set the target, when the mode alone does not say it (the tile shows "Schedule, changed by hand").
SOURCE_NOTES = {
    "off": "frost protection only",
    "override": "changed by hand",
    "boost": "boosting",
    "away": "house away",
}
#: A worker heartbeat older than this many of its intervals means nobody is listening to the radio.
HEARTBEAT_MISSED_INTERVALS = 3


def _iso(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment else None


def temperature_text(value: float | None) -> str:
    """``21.64`` → ``"21.6 °C"``; no value → an em dash (never "0.0")."""
    return "—" if value is None else f"{value:.1f} °C"


def radio_state(*, at: datetime) -> dict:
    """Whether the hub hears its rooms now: the modem link as the serial worker last reported it, and whether
    that report is recent. A stale report is not believed: the page says so instead of "link up"."""
    link = selectors.link_state()
    beat_at = link.get("beat_at")
    interval = link.get("interval_seconds") or 15
    fresh = beat_at is not None and at - beat_at <= timedelta(seconds=max(60, HEARTBEAT_MISSED_INTERVALS * interval))
    if beat_at is None:
        ok, message = False, "The hub's radio has not started yet: temperatures and heaters are not updating."
    elif not fresh:
        ok, message = False, "The hub's radio stopped reporting: temperatures and heaters are not updating."
    elif not link["up"]:
        ok, message = False, "The radio link is down: temperatures and heaters are not updating."
    else:
        ok, message = True, ""
    return {"ok": ok, "message": message, "since": _iso(beat_at)}


def room_tile(room: Room, state: dict, *, the_house=None) -> dict:
    """One room's tile from its ``heating.selectors.room_state``: its values as text, and what the controls need
    (the target's allowed range: the room's frost temperature to its maximum minus 1 °C)."""
    temperature, target, heating, source = state["temperature"], state["target"], state["heating"], state["source"]
    presets = selectors.room_presets(room, the_house)
    if heating is True:
        heating_text = "Heating now"
    elif heating is False:
        heating_text = "Not heating"
    else:
        heating_text = "Heater state unknown"  # no heater, or none has reported: never guessed
    if temperature is None:
        stale_text = "No temperature yet"
    elif state["stale"]:
        stale_text = "No reading since"  # followed by the time (temperature_at) on the page
    else:
        stale_text = ""
    return {
        "id": room.slug,
        "name": room.name,
        "url": reverse("room", args=[room.slug]),
        "temperature": temperature,
        "temperature_text": temperature_text(temperature),
        "temperature_at": state["temperature_at"],
        "stale": bool(state["stale"]),
        "stale_text": stale_text,
        "target": target,
        "target_text": "off" if target is None else temperature_text(target),
        "target_min": presets.frost,
        "target_max": presets.maximum - TARGET_BELOW_MAXIMUM,
        "mode": state["mode"],
        "mode_text": str(MODE_LABELS.get(state["mode"], state["mode"])),
        "source": source,
        "source_note": SOURCE_NOTES.get(source, ""),
        "boost_until": state["boost_until"],
        "heating": heating,
        "heating_text": heating_text,
        "reason": state["decision"] or "",
        "next_change": state["next_change"] or "",
        # "acknowledged": someone has seen it (the tile marks it "seen"); it stays until its condition clears.
        "alerts": [
            {"kind": alert["kind"], "message": alert["message"], "acknowledged": alert["acknowledged"]}
            for alert in state["alerts"]
        ],
    }


def house_state(*, user, at: datetime) -> dict:
    """The home page: one tile per room (``heating.selectors.rooms_overview``), the radio's state, and whether
    this user may change things (else one line saying who can give them control)."""
    overview = selectors.rooms_overview(user=user, at=at)
    rooms = {room.slug: room for room in Room.objects.all()}
    the_house = selectors.house()
    tiles = [
        room_tile(rooms[state["id"]], state, the_house=the_house) for state in overview["rooms"] if state["id"] in rooms
    ]
    return _page(overview, tiles, at=at)


def _page(overview: dict, tiles: list[dict], *, at: datetime) -> dict:
    return {
        "at": _iso(at),
        "radio": radio_state(at=at),
        "away": bool(overview.get("house", {}).get("away")),
        "can_control": bool(overview["can_control"]),
        "control_hint": overview.get("control_hint") or "",
        "step": TARGET_STEP,
        "boost_minutes": BOOST_MINUTES,
        "rooms": tiles,
    }


def room_page_state(room: Room, *, user, at: datetime) -> dict:
    """A room page: its tile, its week, its recent decisions and alerts."""
    overview = {
        "can_control": user.has_perm(CONTROL_PERMISSION),
        "control_hint": selectors.control_hint(user),
        "house": {"away": selectors.house().away},
    }
    page = _page(overview, [room_tile(room, selectors.room_state(room, at=at))], at=at)
    decisions = [
        {
            "at": _iso(decision.at),
            "heat": decision.heat,
            "reason": decision.reason,
            "target_text": "off" if decision.target is None else temperature_text(decision.target),
            "temperature_text": temperature_text(decision.temperature),
        }
        for decision in room.decisions.all()[:20]
    ]
    alerts = [
        {
            "id": alert.pk,
            "kind": alert.kind,
            "label": alert.get_kind_display(),
            "message": alert.message,
            "raised_at": _iso(alert.raised_at),
            "cleared_at": _iso(alert.cleared_at),
            # Acknowledged: someone has seen it (POST /v1/alerts/{id}/acknowledge); it stays open until it clears.
            "acknowledged_at": _iso(alert.acknowledged_at),
            "acknowledged_by": _person(alert.acknowledged_by),
        }
        for alert in room.alerts.select_related("acknowledged_by")[:20]
    ]
    blocks = [
        {
            "weekday": block.weekday,
            "start": _hhmm(block.start_minute),
            "end": _hhmm(block.end_minute),
            "preset": block.preset or None,
            "temperature": block.temperature,
        }
        for block in room.schedule_blocks.all()
    ]
    presets = selectors.room_presets(room)
    return {
        **page,
        "room": page["rooms"][0],
        "decisions": decisions,
        "alert_history": alerts,
        "schedule": blocks,
        "presets": {
            "comfort": presets.comfort,
            "eco": presets.eco,
            "away": presets.away,
            "frost": presets.frost,
        },
        "other_rooms": [{"id": other.slug, "name": other.name} for other in Room.objects.exclude(pk=room.pk)],
    }


def _person(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else ""


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
