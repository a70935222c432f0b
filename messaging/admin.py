"""The event bus in the Django admin: the event log and the outbox, to inspect, never to edit."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from messaging.models import Event, OutboxEvent, TopicGrant


class TypePrefixFilter(admin.SimpleListFilter):
    """By the type's first segment (``heating``, ``downloads``): the types themselves are too many to list."""

    title = "type"
    parameter_name = "type_prefix"

    def lookups(self, request, model_admin):
        types = model_admin.get_queryset(request).values_list("type", flat=True).distinct().order_by("type")[:1000]
        prefixes = sorted({name.split(".", 1)[0] for name in types})
        return [(prefix, prefix) for prefix in prefixes]

    def queryset(self, request, queryset):
        prefix = self.value()
        if not prefix:
            return queryset
        return queryset.filter(type=prefix) | queryset.filter(type__startswith=f"{prefix}.")


class InspectOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _pretty(value) -> str:
    return format_html("<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(Event)
class EventAdmin(InspectOnlyAdmin):
    list_display = ("type", "occurred_at", "source", "received_at")
    list_filter = (TypePrefixFilter, "source", "occurred_at")
    search_fields = ("=id", "type", "source")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at",)
    fields = ("id", "type", "occurred_at", "source", "pretty_data", "topics", "received_at")
    readonly_fields = fields
    show_full_result_count = False  # counting a large log on every page view is what makes admins slow

    @admin.display(description="data")
    def pretty_data(self, event: Event) -> str:
        return _pretty(event.data)

    def has_delete_permission(self, request, obj=None):
        return False  # the log is pruned by retention (EVENTS_RETENTION_DAYS), not by hand


@admin.register(OutboxEvent)
class OutboxEventAdmin(InspectOnlyAdmin):
    list_display = ("type", "event_id", "occurred_at", "source", "attempts", "created_at")
    list_filter = (TypePrefixFilter, "source", "retain")
    search_fields = ("=event_id", "type", "source", "last_error")
    date_hierarchy = "created_at"
    fields = (
        "event_id",
        "type",
        "occurred_at",
        "source",
        "pretty_data",
        "topics",
        "retain",
        "created_at",
        "attempts",
        "last_error",
    )
    readonly_fields = fields

    @admin.display(description="data")
    def pretty_data(self, row: OutboxEvent) -> str:
        return _pretty(row.data)

    def has_delete_permission(self, request, obj=None):
        # Only a superuser may drop a row the relay cannot publish; the event is then never sent.
        return request.user.is_superuser


@admin.register(TopicGrant)
class TopicGrantAdmin(admin.ModelAdmin):
    """Who may subscribe to / publish on which topics of ``/ws/push``; a change applies to new connections."""

    list_display = ("group", "topic_filter", "may_subscribe", "may_publish")
    list_editable = ("may_subscribe", "may_publish")
    list_filter = ("group", "may_subscribe", "may_publish")
    search_fields = ("topic_filter", "group__name")
