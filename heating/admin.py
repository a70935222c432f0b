"""Admin for the radio: nodes (last heard, signal and its recent history, state, location — name and location
editable), readings by date, commands with their outcome, and the modem link (the serial worker's heartbeat) above
the node list."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from heating.models import Command, CommandState, Node, Reading
from heating.selectors import link_state
from heating.services import node_update
from heating.swap.registers import SystemState

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
