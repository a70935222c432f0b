"""Admin for the radio: nodes (last heard, signal and its recent history, state, location — name and location
editable), readings by date, commands with their outcome, and the modem link (the serial worker's heartbeat) above
the node list."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from heating.models import Alert, Command, CommandState, Decision, House, Node, Reading, Room, RoomHeater, ScheduleBlock
from heating.selectors import house, link_state, node_definition, temperature_endpoints
from heating.services import (
    ROOM_UPDATE_FIELDS,
    RoomInputError,
    alert_acknowledge,
    heaters_check,
    house_away_set,
    house_presets_check,
    house_presets_set,
    node_update,
    relay_endpoints,
    room_create,
    room_delete,
    room_fields_check,
    room_heaters_set,
    room_mode_set,
    room_update,
    schedule_check,
    schedule_replace,
)
from heating.swap.registers import SystemState
from heating.thermostat import schedule

ADMIN_SIGNAL_SAMPLES = 20


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "name",
        "place",
        "definition_shown",
        "reachable",
        "last_heard",
        "heard_ago",
        "signal",
        "state",
    )
    list_display_links = ("key", "name")
    list_filter = ("reachable", "unknown_product", "location", "definition")
    search_fields = ("name", "location", "key", "definition")
    fields = (
        "name",
        "location",
        "key",
        "address",
        "definition",
        "manufacturer_id",
        "product_id",
        "unknown_product",
        "reachable",
        "first_seen",
        "last_heard",
        "last_rssi",
        "last_lqi",
        "system_state",
        "nonce",
        "registers",
        "signal_recent",
    )
    readonly_fields = fields[2:]

    def has_add_permission(self, request):
        return False  # nodes appear when the radio hears them

    def save_model(self, request, obj, form, change):
        # Only what the admin edits: a full save would write back the radio's fields as this form read them,
        # undoing what the serial worker stored meanwhile (last heard, signal history, registers).
        node_update(node=obj, name=obj.name, location=obj.location)

    def changelist_view(self, request, extra_context=None):
        state = link_state()
        errors = state.get("decode_errors", 0)
        if state["up"]:
            messages.info(
                request, f"Modem link up — {state['detail']}; {errors} decode errors since the worker started."
            )
        else:
            messages.warning(request, f"Modem link DOWN — {state['detail']}; {errors} decode errors.")
        return super().changelist_view(request, extra_context)

    @admin.display(description="location", ordering="location")
    def place(self, node: Node) -> str:
        return node.place

    @admin.display(description="device", ordering="definition")
    def definition_shown(self, node: Node) -> str:
        if node.unknown_product:
            return f"unknown product {node.manufacturer_id}/{node.product_id}"
        return node.definition or "not identified yet"

    @admin.display(description="heard")
    def heard_ago(self, node: Node) -> str:
        return f"{timesince(node.last_heard)} ago" if node.last_heard else "never"

    @admin.display(description="signal")
    def signal(self, node: Node) -> str:
        if node.last_rssi is None:
            return "—"
        return f"{node.last_rssi:g} dBm, LQI {node.last_lqi}"

    @admin.display(description=f"recent signal (last {ADMIN_SIGNAL_SAMPLES} packets, newest first)")
    def signal_recent(self, node: Node) -> str:
        samples = node.recent_signal(ADMIN_SIGNAL_SAMPLES)
        if not samples:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{} dBm</td><td>{}</td></tr>",
            ((s["at"], f"{s['rssi']:g}", s["lqi"]) for s in samples),
        )
        return format_html("<table><tr><th>heard</th><th>RSSI</th><th>LQI</th></tr>{}</table>", rows)

    @admin.display(description="state", ordering="system_state")
    def state(self, node: Node) -> str:
        if node.system_state is None:
            return "—"
        try:
            return SystemState(node.system_state).name.lower()
        except ValueError:
            return str(node.system_state)


@admin.register(Reading)
class ReadingAdmin(admin.ModelAdmin):
    list_display = ("recorded_at", "node", "endpoint_id", "name", "value", "unit", "rssi", "lqi")
    list_filter = ("name", "node")
    search_fields = ("endpoint_id", "name", "node__name", "node__key")
    date_hierarchy = "recorded_at"
    list_select_related = ("node",)
    readonly_fields = [field.name for field in Reading._meta.fields]
    # Counting millions of rows on every page costs more than it tells.
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    list_display = (
        "requested_at",
        "node",
        "endpoint",
        "requested_value",
        "state",
        "attempts",
        "finished_at",
        "requested_by",
        "origin",
        "error",
    )
    list_filter = ("state", "origin", "node")
    search_fields = ("endpoint", "node__name", "node__key", "error")
    date_hierarchy = "requested_at"
    list_select_related = ("node", "requested_by")
    readonly_fields = [field.name for field in Command._meta.fields]
    actions = ["fail_selected"]

    def has_add_permission(self, request):
        return False  # commands come from the page, the API or MQTT, which check who may switch hardware

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Give up on the selected queued commands")
    def fail_selected(self, request, queryset):
        from django.utils import timezone

        from heating.services import command_fail

        pending = queryset.filter(state__in=[CommandState.QUEUED, CommandState.SENT]).select_related("node")
        for command in pending:
            command_fail(command=command, error=f"given up by {request.user} in the admin", at=timezone.now())
        self.message_user(request, f"{len(pending)} command(s) marked failed.")


# --- rooms: the house, rooms with their heaters and week, alerts, decisions ----------------------------------------
# Writes go through heating.services (the same checks, node locations and heating.room_changed events as the pages
# and the API); the forms run the services' checks so a refusal shows on the field, not as an error page.


def _add_input_error(form, error: RoomInputError, *, names: dict[str, str] | None = None) -> None:
    field = (names or {}).get(error.field, error.field)
    form.add_error(field if field in form.fields else None, error.message)


class NodeChoiceField(forms.ModelChoiceField):
    """Nodes the radio has heard, named as people know them: never an address typed by hand."""

    def label_from_instance(self, node: Node) -> str:
        device = node.definition or "not identified yet"
        return f"{node} — {node.key}, {device}, {node.place}"


def _endpoint_choices(pick) -> list[tuple[str, str]]:
    """The endpoint names ``pick(definition)`` gives for the nodes heard (each checked against its node on save)."""
    names: set[str] = set()
    for node in Node.objects.all():
        names.update(pick(node_definition(node)))
    return [(name, name) for name in sorted(names)]


class HouseForm(forms.ModelForm):
    class Meta:
        model = House
        fields = ["comfort", "eco", "away_temperature", "frost", "maximum", "away"]

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(name) for name in HOUSE_PRESETS}
        if None not in values.values():
            try:
                house_presets_check(values)
            except RoomInputError as error:
                _add_input_error(self, error)
        return cleaned


HOUSE_PRESETS = ("comfort", "eco", "away_temperature", "frost", "maximum")


@admin.register(House)
class HouseAdmin(admin.ModelAdmin):
    """The one row of house-wide settings: its list is its change form."""

    form = HouseForm
    list_display = ("__str__", "away", "comfort", "eco", "away_temperature", "frost", "maximum", "hub_id")
    search_fields = ("hub_id",)
    readonly_fields = ("away_since", "hub_id_shown")
    fields = ("comfort", "eco", "away_temperature", "frost", "maximum", "away", "away_since", "hub_id_shown")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return redirect(reverse("admin:heating_house_change", args=[house().pk]))

    @admin.display(description="hub id (Home Assistant)")
    def hub_id_shown(self, obj: House) -> str:
        return house().hub_id

    def save_model(self, request, obj, form, change):
        presets = {name: form.cleaned_data[name] for name in HOUSE_PRESETS if name in form.changed_data}
        if presets:
            house_presets_set(by=request.user, **presets)
        if "away" in form.changed_data:
            house_away_set(away=form.cleaned_data["away"], by=request.user, origin="admin")


class RoomForm(forms.ModelForm):
    temperature_node = NodeChoiceField(
        queryset=Node.objects.all(), required=False, help_text="The node whose endpoint gives the room's temperature."
    )
    temperature_endpoint = forms.ChoiceField(required=False, help_text="Empty: the node's first temperature endpoint.")

    class Meta:
        model = Room
        fields = [
            "slug",
            "name",
            "position",
            "mode",
            "temperature_node",
            "temperature_endpoint",
            "comfort",
            "eco",
            "away_temperature",
            "frost",
            "maximum",
            "proportional",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["temperature_endpoint"].choices = [("", "—"), *_endpoint_choices(temperature_endpoints)]

    def clean(self):
        cleaned = super().clean()
        fields = {name: cleaned.get(name) for name in ROOM_UPDATE_FIELDS if name in cleaned}
        try:
            room_fields_check(room=self.instance, fields=fields)
        except RoomInputError as error:
            _add_input_error(self, error, names={"id": "slug"})
        return cleaned


class _ServiceSavedFormSet(forms.BaseInlineFormSet):
    """An inline whose rows the room's service stores as one list (RoomAdmin.save_formset), checked as a whole."""

    def kept_forms(self) -> list[forms.ModelForm]:
        return [
            form
            for form in self.forms
            if hasattr(form, "cleaned_data") and form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def service_check(self) -> None:
        """Raise the room service's RoomInputError for the kept rows as a whole (heaters_check, schedule_check)."""
        raise NotImplementedError

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        try:
            self.service_check()
        except RoomInputError as error:
            raise forms.ValidationError(error.message) from None


class HeaterForm(forms.ModelForm):
    node = NodeChoiceField(queryset=Node.objects.all())
    endpoint = forms.ChoiceField(help_text="The node's relay that switches this heater.")

    class Meta:
        model = RoomHeater
        fields = ["node", "endpoint", "power_w"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["endpoint"].choices = _endpoint_choices(relay_endpoints) or [("Heating", "Heating")]

    def _get_validation_exclusions(self):
        # The node/endpoint constraint is left to HeaterFormSet's heaters_check, which names the room a relay
        # already heats (the bare constraint would only say "already exists").
        return {*super()._get_validation_exclusions(), "node"}


class HeaterFormSet(_ServiceSavedFormSet):
    def heaters(self) -> list[tuple]:
        return [
            (form.cleaned_data["node"], form.cleaned_data["endpoint"], form.cleaned_data["power_w"])
            for form in self.kept_forms()
        ]

    def service_check(self) -> None:
        heaters_check(room=self.instance, heaters=self.heaters())


class RoomHeaterInline(admin.TabularInline):
    model = RoomHeater
    form = HeaterForm
    formset = HeaterFormSet
    extra = 0
    verbose_name = "heater"


WEEKDAY_CHOICES = list(enumerate(schedule.WEEKDAYS))


class BlockForm(forms.ModelForm):
    """A block in the house's wall-clock time, ``HH:MM`` (24:00 ends the day)."""

    weekday = forms.TypedChoiceField(choices=WEEKDAY_CHOICES, coerce=int)
    start = forms.CharField(max_length=5, help_text="HH:MM")
    end = forms.CharField(max_length=5, help_text="HH:MM (24:00: midnight)")

    class Meta:
        model = ScheduleBlock
        fields = ["weekday", "start", "end", "preset", "temperature"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["start"] = schedule.format_time(self.instance.start_minute)
            self.initial["end"] = schedule.format_time(self.instance.end_minute)

    def _minutes(self, name: str) -> int | None:
        try:
            return schedule.parse_time(self.cleaned_data[name], end=name == "end")
        except schedule.ScheduleError as error:
            raise forms.ValidationError(error.message) from None

    def clean_start(self) -> int | None:
        return self._minutes("start")

    def clean_end(self) -> int | None:
        return self._minutes("end")

    def block(self) -> schedule.Block:
        data = self.cleaned_data
        return schedule.Block(
            weekday=data["weekday"],
            start=data["start"],
            end=data["end"],
            preset=data.get("preset") or None,
            temperature=data.get("temperature"),
        )


class BlockFormSet(_ServiceSavedFormSet):
    def blocks(self) -> list[schedule.Block]:
        return [form.block() for form in self.kept_forms()]

    def service_check(self) -> None:
        schedule_check(room=self.instance, blocks=self.blocks())


class ScheduleBlockInline(admin.TabularInline):
    model = ScheduleBlock
    form = BlockForm
    formset = BlockFormSet
    extra = 0
    verbose_name = "schedule block"
    verbose_name_plural = f"weekly schedule (wall-clock time in {settings.TIME_ZONE})"


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    form = RoomForm
    inlines = [RoomHeaterInline, ScheduleBlockInline]
    list_display = ("name", "slug", "position", "mode", "temperature_source", "heater_count", "updated_at")
    list_display_links = ("name", "slug")
    list_filter = ("mode",)
    search_fields = ("name", "slug")
    list_select_related = ("temperature_node",)
    readonly_fields = ("manual_target", "override_target", "override_until", "boost_until", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(heaters_total=Count("heaters"))

    @admin.display(description="temperature from")
    def temperature_source(self, room: Room) -> str:
        if room.temperature_node is None:
            return "—"
        return f"{room.temperature_node} {room.temperature_endpoint}"

    @admin.display(description="heaters", ordering="heaters_total")
    def heater_count(self, room: Room) -> int:
        return room.heaters_total

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {name: data[name] for name in ROOM_UPDATE_FIELDS if name in form.changed_data}
            room = room_update(room=obj, by=request.user, **fields) if fields else obj
        else:
            room = room_create(
                slug=data["slug"],
                name=data["name"],
                temperature_node=data.get("temperature_node"),
                temperature_endpoint=data.get("temperature_endpoint") or "",
                by=request.user,
            )
            rest = {name: data[name] for name in ROOM_UPDATE_FIELDS if name in data and name not in _CREATED_WITH}
            room = room_update(room=room, by=request.user, **rest)
        if data.get("mode") and data["mode"] != room.mode:
            room = room_mode_set(room=room, mode=data["mode"], by=request.user, origin="admin")
        # The admin goes on with this object (inlines, the message, the redirect): it is the stored room.
        obj.pk = room.pk
        obj.refresh_from_db()
        obj._state.adding = False

    def delete_model(self, request, obj):
        # Through the service: the room's retained MQTT topics and its Home Assistant entity go with it.
        room_delete(room=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for room in queryset:
            room_delete(room=room, by=request.user)

    def save_formset(self, request, form, formset, change):
        room = form.instance
        if isinstance(formset, HeaterFormSet):
            room_heaters_set(room=room, heaters=formset.heaters(), by=request.user)
        elif isinstance(formset, BlockFormSet):
            schedule_replace(room=room, blocks=formset.blocks(), by=request.user)
        else:
            formset.save()
            return
        # What the admin's change message reads of a saved formset.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


_CREATED_WITH = ("slug", "name", "temperature_node", "temperature_endpoint")


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RoomHeater)
class RoomHeaterAdmin(_ReadOnlyAdmin):
    """Every heater of every room (set them on the room's page)."""

    list_display = ("room", "node", "endpoint", "power_w")
    list_filter = ("room",)
    search_fields = ("room__name", "room__slug", "node__name", "node__key", "endpoint")
    list_select_related = ("room", "node")


@admin.register(ScheduleBlock)
class ScheduleBlockAdmin(_ReadOnlyAdmin):
    """Every room's weekly blocks (edit them on the room's page)."""

    list_display = ("room", "weekday_name", "start", "end", "preset", "temperature")
    list_filter = ("room", "weekday", "preset")
    search_fields = ("room__name", "room__slug", "preset")
    list_select_related = ("room",)

    @admin.display(description="day", ordering="weekday")
    def weekday_name(self, block: ScheduleBlock) -> str:
        return schedule.WEEKDAYS[block.weekday] if 0 <= block.weekday < 7 else str(block.weekday)

    @admin.display(description="from", ordering="start_minute")
    def start(self, block: ScheduleBlock) -> str:
        return schedule.format_time(block.start_minute)

    @admin.display(description="to")
    def end(self, block: ScheduleBlock) -> str:
        return schedule.format_time(block.end_minute)


@admin.register(Alert)
class AlertAdmin(_ReadOnlyAdmin):
    list_display = ("raised_at", "room", "kind", "message", "is_open", "acknowledged_at", "acknowledged_by")
    list_filter = ("kind", ("cleared_at", admin.EmptyFieldListFilter), "room")
    search_fields = ("message", "room__name", "room__slug", "kind")
    list_select_related = ("room", "acknowledged_by")
    date_hierarchy = "raised_at"
    actions = ["acknowledge_selected"]

    @admin.display(description="open", boolean=True)
    def is_open(self, alert: Alert) -> bool:
        return alert.cleared_at is None

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge_selected(self, request, queryset):
        now = timezone.now()
        pending = list(queryset.filter(acknowledged_at__isnull=True))
        for alert in pending:
            alert_acknowledge(alert=alert, by=request.user, at=now)
        self.message_user(request, f"{len(pending)} alert(s) acknowledged.")


@admin.register(Decision)
class DecisionAdmin(_ReadOnlyAdmin):
    list_display = ("at", "room", "heat", "reason", "target", "temperature")
    list_filter = ("heat", "room")
    search_fields = ("reason", "room__name", "room__slug")
    list_select_related = ("room",)
    date_hierarchy = "at"
    show_full_result_count = False
