"""The rooms' part of ``/v1/`` (docs/api.md, "Rooms"):

* ``GET /v1/rooms`` (count, ``?mode=``, ``?q=``), ``GET /v1/rooms/{id}``: each room's state — temperature, target,
  mode and what set it, heating, the next change, boost, open alerts;
* ``PATCH /v1/rooms/{id}`` ``{"target": 21.5, "minutes": 90}`` / ``{"mode": "schedule"}``;
* ``POST /v1/rooms/{id}/boost`` ``{"minutes": 60}`` (``DELETE`` ends it);
* ``GET`` / ``PUT /v1/rooms/{id}/schedule``: weekday + ``HH:MM`` blocks in the house's zone, which the answer names;
* ``GET /v1/rooms/{id}/history?since=&until=&points=``: temperature, target and heater-on periods, downsampled;
* ``GET /v1/alerts`` (``?open=``, ``?room=``, ``?kind=``), ``POST /v1/alerts/{id}/acknowledge``;
* ``GET /v1/presets``; ``PATCH`` for staff.

Reading needs ``heating:read`` on a token; every change needs the permission ``heating.control`` and, on a token,
``heating:write``. The services refuse bad input with ``RoomInputError``, answered as a 400 naming the field and
the allowed range.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from heating.history import DEFAULT_POINTS, MAX_POINTS, MIN_POINTS
from heating.models import Alert, Mode, Room
from heating.selectors import house, room_blocks, room_history, room_presets, room_state, rooms_with_state_relations
from heating.services import (
    BOOST_DEFAULT_MINUTES,
    FROST_RANGE,
    MAXIMUM_RANGE,
    TARGET_BELOW_MAXIMUM,
    RoomInputError,
    alert_acknowledge,
    house_presets_set,
    room_boost,
    room_boost_cancel,
    room_mode_set,
    room_target_set,
    schedule_replace,
)
from heating.thermostat import schedule
from heating.thermostat.schedule import Block, ScheduleError
from hub.api.fields import UtcDateTimeField
from hub.api.filters import parse_time_param
from hub.api.pagination import bounded_int_param
from hub.api.serializers import HubModelSerializer, HubSerializer
from hub.api.viewsets import HubReadOnlyViewSet
from hub.roles import user_is_staff

CONTROL = "heating.control"
#: Every change to a room, its schedule or an alert needs heating.control (reads need only a signed-in user).
_CONTROL_TO_CHANGE = {method: (CONTROL,) for method in ("POST", "PUT", "PATCH", "DELETE")}
ORIGIN = "api"
HISTORY_SPAN = timedelta(hours=24)
#: A week of the shortest blocks: no schedule can hold more.
MAX_BLOCKS = 7 * schedule.MINUTES_PER_DAY // schedule.MINIMUM_BLOCK_MINUTES


class _HeatingApi:
    api_scope = "heating"


def _refused(exc: RoomInputError) -> serializers.ValidationError:
    return serializers.ValidationError({exc.field: [exc.message]})


def _body(request, allowed: tuple[str, ...], *, ignored: tuple[str, ...] = ()) -> dict:
    """The request's JSON object; a field it does not take is a 400 naming it (a typo must not pass unnoticed)."""
    data = request.data
    if not isinstance(data, dict):
        raise serializers.ValidationError(
            {"non_field_errors": [f"Send a JSON object with {', '.join(allowed)}, not {type(data).__name__}."]}
        )
    unknown = sorted(name for name in data if name not in allowed and name not in ignored)
    if unknown:
        raise serializers.ValidationError(
            {name[:64]: [f"Not a field of this request; it takes {', '.join(allowed)}."] for name in unknown}
        )
    return {name: value for name, value in data.items() if name in allowed}


def _target_range(room: Room) -> tuple[float, float]:
    presets = room_presets(room)
    return presets.frost, presets.maximum - TARGET_BELOW_MAXIMUM


# --- serializers (the answers' shapes; ``?fields=`` applies to each view's own) ----------------------------------


class NextChangeSerializer(HubSerializer):
    at = UtcDateTimeField(allow_null=True, help_text="when the target changes next (UTC)")
    text = serializers.CharField(allow_null=True, help_text='e.g. "19.5 °C at 17:00", in the house\'s zone')


class RoomSerializer(HubSerializer):
    id = serializers.CharField(help_text="the room's slug, also its MQTT topic level")
    name = serializers.CharField()
    temperature = serializers.FloatField(allow_null=True, help_text="°C, the newest reading of its source")
    temperature_at = UtcDateTimeField(allow_null=True)
    stale = serializers.BooleanField(help_text="no temperature, or none recent enough to heat by")
    target = serializers.FloatField(allow_null=True, help_text="°C; null while the room is off (frost still applies)")
    mode = serializers.ChoiceField(choices=Mode.choices)
    source = serializers.ChoiceField(
        choices=["off", "manual", "schedule", "override", "boost", "away"], help_text="what sets the target now"
    )
    heating = serializers.BooleanField(allow_null=True, help_text="a heater reports on; null while unknown")
    next_change = NextChangeSerializer(allow_null=True)
    boost_until = UtcDateTimeField(allow_null=True)
    decision = serializers.CharField(allow_null=True, help_text="the thermostat's last reason, e.g. 'on: below target'")
    alerts = serializers.IntegerField(help_text="how many alerts are open")


class RangeSerializer(HubSerializer):
    minimum = serializers.FloatField()
    maximum = serializers.FloatField()


class PresetValuesSerializer(HubSerializer):
    comfort = serializers.FloatField()
    eco = serializers.FloatField()
    away = serializers.FloatField()
    frost = serializers.FloatField()
    maximum = serializers.FloatField()


class RoomAlertSerializer(HubSerializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    message = serializers.CharField()
    raised_at = UtcDateTimeField()
    acknowledged = serializers.BooleanField()


class RoomDetailSerializer(RoomSerializer):
    away = serializers.BooleanField(help_text="the house's away switch is on")
    decision_at = UtcDateTimeField(allow_null=True)
    heaters = serializers.IntegerField()
    target_range = RangeSerializer(help_text="what a target may be: frost to maximum - 1 °C")
    presets = PresetValuesSerializer(help_text="the room's preset temperatures (its own, else the house's)")
    open_alerts = RoomAlertSerializer(many=True)


def room_data(room: Room, *, at, detail: bool = False) -> dict:
    """A room as the API shows it (``room_state`` with the next change as instant and text, alerts counted)."""
    state = room_state(room, at=at)
    data = {
        **state,
        "next_change": (
            {"at": state["until"], "text": state["next_change"]} if state["until"] or state["next_change"] else None
        ),
        "alerts": len(state["alerts"]),
    }
    if detail:
        presets = room_presets(room)
        low, high = _target_range(room)
        data |= {
            "target_range": {"minimum": low, "maximum": high},
            "presets": {
                "comfort": presets.comfort,
                "eco": presets.eco,
                "away": presets.away,
                "frost": presets.frost,
                "maximum": presets.maximum,
            },
            "open_alerts": state["alerts"],
        }
    return data


class RoomChangeSerializer(HubSerializer):
    """For the schema: the service functions check the values (their 400s name the allowed range)."""

    target = serializers.FloatField(required=False, help_text="°C, from the room's frost to its maximum - 1")
    minutes = serializers.IntegerField(
        required=False, help_text="on schedule: hold the target this long (1 to 10080) instead of to the next change"
    )
    mode = serializers.ChoiceField(choices=Mode.choices, required=False)


class BoostSerializer(HubSerializer):
    minutes = serializers.IntegerField(required=False, default=BOOST_DEFAULT_MINUTES, help_text="1 to 1440")


class BlockSerializer(HubSerializer):
    weekday = serializers.IntegerField(help_text="0 Monday … 6 Sunday")
    day = serializers.CharField(read_only=True, help_text="the weekday's name (ignored on PUT)")
    start = serializers.CharField(help_text='"HH:MM" (00:00 to 23:45), in the house\'s zone')
    end = serializers.CharField(help_text='"HH:MM", at least 15 minutes after start; "24:00" ends the day')
    preset = serializers.ChoiceField(choices=list(schedule.PRESETS), allow_null=True, required=False)
    temperature = serializers.FloatField(allow_null=True, required=False, help_text="°C, when no preset")


class ScheduleSerializer(HubSerializer):
    room = serializers.CharField(read_only=True)
    zone = serializers.CharField(help_text="the house's zone (HUB_TIME_ZONE) the blocks' times are in")
    target_range = RangeSerializer(read_only=True, help_text="what a block's temperature may be")
    blocks = BlockSerializer(many=True)


class HistoryPointSerializer(HubSerializer):
    at = UtcDateTimeField()
    value = serializers.FloatField(allow_null=True)


class HeatingPeriodSerializer(HubSerializer):
    start = UtcDateTimeField()
    end = UtcDateTimeField()


@extend_schema_field(HistoryPointSerializer(many=True))
class _PointsField(serializers.JSONField):
    """Up to 2,000 points passed through as they are (a serializer per point would cost more than the query)."""


@extend_schema_field(HeatingPeriodSerializer(many=True))
class _PeriodsField(serializers.JSONField):
    pass


class HistorySerializer(HubSerializer):
    room = serializers.CharField()
    since = UtcDateTimeField()
    until = UtcDateTimeField()
    points = serializers.IntegerField(help_text="the most points any series holds")
    readings = serializers.IntegerField(help_text="how many temperature readings the range holds")
    downsampled = serializers.BooleanField(help_text="the temperature series keeps each bucket's lowest and highest")
    temperature = _PointsField()
    target = _PointsField(help_text="the thermostat's target where it changed; null while off")
    heating = _PeriodsField(help_text="when the thermostat had the heaters on")


def schedule_data(room: Room) -> dict:
    low, high = _target_range(room)
    return {
        "room": room.slug,
        "zone": settings.TIME_ZONE,
        "target_range": {"minimum": low, "maximum": high},
        "blocks": [
            {
                "weekday": block.weekday,
                "day": schedule.WEEKDAYS[block.weekday],
                "start": schedule.format_time(block.start),
                "end": schedule.format_time(block.end),
                "preset": block.preset,
                "temperature": block.temperature,
            }
            for block in room_blocks(room)
        ],
    }


def _blocks_from(raw) -> list[Block]:
    """The PUT's blocks as the schedule module's; a malformed one is a 400 naming ``blocks[i]`` (validation of
    ranges, lengths and overlaps is schedule_replace's)."""
    if not isinstance(raw, list):
        raise serializers.ValidationError({"blocks": ["Send a list of blocks (it may be empty: no schedule)."]})
    if len(raw) > MAX_BLOCKS:
        raise serializers.ValidationError(
            {"blocks": [f"At most {MAX_BLOCKS} blocks (a week of 15-minute blocks), not {len(raw)}."]}
        )
    blocks = []
    for index, item in enumerate(raw):
        field = f"blocks[{index}]"
        if not isinstance(item, dict):
            raise serializers.ValidationError(
                {field: [f"block {index + 1}: send an object with weekday, start, end and a preset or a temperature."]}
            )
        unknown = sorted(set(item) - {"weekday", "day", "start", "end", "preset", "temperature"})
        if unknown:
            raise serializers.ValidationError(
                {
                    field: [
                        f"block {index + 1}: {unknown[0][:64]!r} is not a block's field (weekday, start, end, "
                        "preset, temperature)."
                    ]
                }
            )
        try:
            start = schedule.parse_time(item.get("start"))
            end = schedule.parse_time(item.get("end"), end=True)
        except ScheduleError as exc:
            raise serializers.ValidationError({field: [f"block {index + 1}: {exc.message}"]}) from None
        blocks.append(Block(item.get("weekday"), start, end, item.get("preset"), item.get("temperature")))
    return blocks


# --- views ---------------------------------------------------------------------------------------------------


_ROOM_FILTERS = [OpenApiParameter("mode", str, enum=Mode.values, description="only rooms in this mode")]
_HISTORY_PARAMETERS = [
    OpenApiParameter("since", str, description="from this time (ISO 8601 UTC); default 24 h before until"),
    OpenApiParameter("until", str, description="to this time, exclusive (ISO 8601 UTC); default now"),
    OpenApiParameter(
        "points",
        int,
        description=f"the most points a series may hold: {MIN_POINTS} to {MAX_POINTS}, default {DEFAULT_POINTS}",
    ),
]


@extend_schema_view(
    list=extend_schema(parameters=_ROOM_FILTERS),
    count=extend_schema(parameters=_ROOM_FILTERS),
    retrieve=extend_schema(responses=RoomDetailSerializer),
    partial_update=extend_schema(
        request=RoomChangeSerializer,
        responses=RoomDetailSerializer,
        description="A new target (in manual mode it stays; on schedule it holds to the next change, or for "
        "`minutes`), and/or a mode. Needs heating.control.",
    ),
)
class RoomViewSet(_HeatingApi, HubReadOnlyViewSet):
    serializer_class = RoomSerializer
    lookup_field = "slug"
    lookup_url_kwarg = "id"
    filter_fields = {"mode": "mode"}
    search_fields = ["name", "slug"]
    required_permissions = _CONTROL_TO_CHANGE

    def get_queryset(self):
        return rooms_with_state_relations()

    def get_serializer_class(self):
        return {
            "retrieve": RoomDetailSerializer,
            "partial_update": RoomDetailSerializer,
            "boost": RoomDetailSerializer,
            "schedule": ScheduleSerializer,
            "history": HistorySerializer,
        }.get(self.action, RoomSerializer)

    def _room_answer(self, room: Room) -> Response:
        room = self.get_queryset().get(pk=room.pk)  # as stored now, with its relations
        return Response(self.get_serializer(room_data(room, at=timezone.now(), detail=True)).data)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        now = timezone.now()
        return self.get_paginated_response(
            self.get_serializer([room_data(room, at=now) for room in page], many=True).data
        )

    def retrieve(self, request, *args, **kwargs):
        return self._room_answer(self.get_object())

    def partial_update(self, request, *args, **kwargs):
        data = _body(request, ("target", "minutes", "mode"))
        if "minutes" in data and "target" not in data:
            raise serializers.ValidationError({"minutes": ["minutes goes with a target: how long it holds."]})
        if "target" not in data and "mode" not in data:
            raise serializers.ValidationError({"non_field_errors": ["Send a target (with minutes) or a mode."]})
        if data.get("mode") == Mode.OFF and "target" in data:
            raise serializers.ValidationError(
                {"target": ["A room in mode off has no target; send mode manual or schedule with it."]}
            )
        room = self.get_object()
        try:
            with transaction.atomic():
                if "mode" in data:
                    room = room_mode_set(room=room, mode=data["mode"], by=request.user, origin=ORIGIN)
                if "target" in data:
                    room = self._target_set(room, data)
        except RoomInputError as exc:
            raise _refused(exc) from None
        return self._room_answer(room)

    def _target_set(self, room: Room, data: dict) -> Room:
        target, minutes = data["target"], data.get("minutes")
        low, high = _target_range(room)
        if isinstance(target, bool) or not isinstance(target, int | float):
            raise RoomInputError(f"target must be a number of °C from {low:g} to {high:g}", field="target")
        if minutes is not None and room.mode != Mode.SCHEDULE:
            raise RoomInputError(
                f"minutes applies on schedule only; in mode {room.mode} a target stays until changed",
                field="minutes",
            )
        return room_target_set(room=room, target=target, minutes=minutes, by=self.request.user, origin=ORIGIN)

    @extend_schema(
        methods=["POST"],
        request=BoostSerializer,
        responses=RoomDetailSerializer,
        description="Heat for `minutes` (1 to 1440, default 60), then back to what applied before.",
    )
    # {200: …}: drf-spectacular documents a bare serializer on DELETE as a 204, but the room comes back.
    @extend_schema(
        methods=["DELETE"], request=None, responses={200: RoomDetailSerializer}, description="End the boost."
    )
    @action(detail=True, methods=["post", "delete"])
    def boost(self, request, *args, **kwargs):
        room = self.get_object()
        try:
            if request.method == "DELETE":
                room = room_boost_cancel(room=room, by=request.user, origin=ORIGIN)
            else:
                minutes = _body(request, ("minutes",)).get("minutes", BOOST_DEFAULT_MINUTES)
                room = room_boost(room=room, minutes=minutes, by=request.user, origin=ORIGIN)
        except RoomInputError as exc:
            raise _refused(exc) from None
        return self._room_answer(room)

    @extend_schema(
        methods=["GET"],
        responses=ScheduleSerializer,
        description="The room's week: blocks of wall-clock time in the house's zone (named in `zone`).",
    )
    @extend_schema(
        methods=["PUT"],
        request=ScheduleSerializer,
        responses=ScheduleSerializer,
        description="Replace the week. Blocks last at least 15 minutes and do not overlap; a bad one is a 400 "
        "naming `blocks[i]` and what is allowed.",
    )
    @action(detail=True, methods=["get", "put"])
    def schedule(self, request, *args, **kwargs):
        room = self.get_object()
        if request.method == "PUT":
            data = _body(request, ("blocks", "zone"), ignored=("room", "target_range"))
            if "zone" in data and data["zone"] != settings.TIME_ZONE:
                raise serializers.ValidationError(
                    {"zone": [f"Blocks are in the house's zone, {settings.TIME_ZONE}; leave zone out or send it."]}
                )
            if "blocks" not in data:
                raise serializers.ValidationError({"blocks": ["Send the week's blocks (an empty list: none)."]})
            try:
                schedule_replace(room=room, blocks=_blocks_from(data["blocks"]), by=request.user)
            except RoomInputError as exc:
                raise _refused(exc) from None
            room = self.get_queryset().get(pk=room.pk)  # its blocks as stored now
        return Response(self.get_serializer(schedule_data(room)).data)

    @extend_schema(
        parameters=_HISTORY_PARAMETERS,
        responses=HistorySerializer,
        description="Temperature, target and heater-on periods; series longer than `points` keep each time "
        "bucket's lowest and highest value.",
    )
    @action(detail=True, methods=["get"])
    def history(self, request, *args, **kwargs):
        now = timezone.now()
        since, until = self._history_range(request, now)
        points = bounded_int_param(request, "points", default=DEFAULT_POINTS, minimum=MIN_POINTS, maximum=MAX_POINTS)
        room = self.get_object()
        answer = room_history(room, since=since, until=until, points=points, now=now)
        return Response(self.get_serializer(answer).data)

    @staticmethod
    def _history_range(request, now):
        since = parse_time_param(request, "since")
        until = parse_time_param(request, "until") or now
        if since is None:
            try:
                since = until - HISTORY_SPAN
            except OverflowError:
                raise serializers.ValidationError(
                    {"until": ["Give since too: 24 hours before this until is before the year 1."]}
                ) from None
        if since >= until:
            raise serializers.ValidationError({"since": ["since must be before until."]})
        return since, until


# --- alerts ----------------------------------------------------------------------------------------------------


class AlertSerializer(HubModelSerializer):
    room = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text="the room's id; null: the house")
    title = serializers.CharField(source="get_kind_display", read_only=True)
    open = serializers.SerializerMethodField(help_text="its condition still holds")
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "room",
            "kind",
            "title",
            "message",
            "raised_at",
            "cleared_at",
            "open",
            "acknowledged_at",
            "acknowledged_by",
        ]
        read_only_fields = fields

    def get_open(self, alert: Alert) -> bool:
        return alert.cleared_at is None


_OPEN_VALUES = {"true": True, "false": False}
_ALERT_FILTERS = [
    OpenApiParameter("open", str, enum=list(_OPEN_VALUES), description="true: still open; false: cleared"),
    OpenApiParameter("room", str, description="the room's id"),
    OpenApiParameter("kind", str, description="e.g. sensor_stale, relay_stuck"),
]


@extend_schema_view(list=extend_schema(parameters=_ALERT_FILTERS), count=extend_schema(parameters=_ALERT_FILTERS))
class AlertViewSet(_HeatingApi, HubReadOnlyViewSet):
    serializer_class = AlertSerializer
    lookup_value_regex = r"[0-9]{1,18}"
    time_range_field = "raised_at"
    filter_fields = {"room": "room__slug", "kind": "kind"}
    required_permissions = _CONTROL_TO_CHANGE

    def get_queryset(self):
        alerts = Alert.objects.select_related("room", "acknowledged_by")
        raw = self.request.query_params.get("open")
        if raw is None:
            return alerts
        if raw not in _OPEN_VALUES:
            raise serializers.ValidationError({"open": [f"Expected true or false, not {raw[:40]!r}."]})
        return alerts.filter(cleared_at__isnull=_OPEN_VALUES[raw])

    @extend_schema(request=None, responses=AlertSerializer, description="Seen: it stays open until it clears.")
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        alert = alert_acknowledge(alert=self.get_object(), by=request.user, at=timezone.now())
        return Response(self.get_serializer(alert).data)


# --- presets ---------------------------------------------------------------------------------------------------

#: The API's names of the house's presets → House's fields.
_PRESET_FIELDS = {
    "comfort": "comfort",
    "eco": "eco",
    "away": "away_temperature",
    "frost": "frost",
    "maximum": "maximum",
}


class PresetsSerializer(PresetValuesSerializer):
    limits = serializers.DictField(
        child=RangeSerializer(), read_only=True, help_text="what frost and maximum may be set to (°C)"
    )


def presets_data() -> dict:
    the_house = house()
    return {
        **{name: getattr(the_house, field) for name, field in _PRESET_FIELDS.items()},
        "limits": {
            "frost": {"minimum": FROST_RANGE[0], "maximum": FROST_RANGE[1]},
            "maximum": {"minimum": MAXIMUM_RANGE[0], "maximum": MAXIMUM_RANGE[1]},
        },
    }


class PresetsView(_HeatingApi, APIView):
    """The house's preset temperatures (°C); rooms may override each (``GET /v1/rooms/{id}`` shows a room's)."""

    @extend_schema(responses=PresetsSerializer)
    def get(self, request):
        return Response(presets_data())

    @extend_schema(
        request=PresetValuesSerializer(partial=True),
        responses=PresetsSerializer,
        description="Staff: change any of them. frost 5 to 12, maximum 25 to 35, the others frost to maximum - 1.",
    )
    def patch(self, request):
        if not user_is_staff(request.user):
            raise exceptions.PermissionDenied("Only staff may change the house's presets.")
        changes = _body(request, tuple(_PRESET_FIELDS))
        if not changes:
            raise serializers.ValidationError({"non_field_errors": [f"Send any of {', '.join(_PRESET_FIELDS)}."]})
        api_name = {field: name for name, field in _PRESET_FIELDS.items()}
        try:
            house_presets_set(by=request.user, **{_PRESET_FIELDS[name]: value for name, value in changes.items()})
        except RoomInputError as exc:
            raise serializers.ValidationError({api_name.get(exc.field, exc.field): [exc.message]}) from None
        return Response(presets_data())
