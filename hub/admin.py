"""Admin for the hub's own models; each app registers its own in ``<app>/admin.py``."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.timesince import timesince

from hub.models import Heartbeat


def heartbeat_is_alive(beat: Heartbeat, *, now=None) -> bool:
    # The same rule as /healthz (hub.health.heartbeat_check): older than twice its interval counts as lost.
    now = now or timezone.now()
    return now - beat.beat_at <= timedelta(seconds=2 * beat.interval_seconds)


class HeartbeatStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("alive", "Alive"), ("lost", "Lost (no beat for twice its interval)"))

    def queryset(self, request, queryset):
        if self.value() not in ("alive", "lost"):
            return queryset
        # One row per worker: deciding in Python keeps the rule in one place and the query portable.
        now = timezone.now()
        alive = [beat.name for beat in Heartbeat.objects.all() if heartbeat_is_alive(beat, now=now)]
        return queryset.filter(name__in=alive) if self.value() == "alive" else queryset.exclude(name__in=alive)


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "alive", "beat_at", "age", "interval_seconds")
    list_filter = (HeartbeatStateFilter, "beat_at")
    search_fields = ("name",)
    readonly_fields = ("name", "beat_at", "interval_seconds", "details")

    # Workers write their own heartbeats; an admin may only look, or delete one of a retired worker.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="age")
    def age(self, beat: Heartbeat) -> str:
        return timesince(beat.beat_at)

    @admin.display(boolean=True, description="alive")
    def alive(self, beat: Heartbeat) -> bool:
        return heartbeat_is_alive(beat)
