"""Admin for the hub's own models; each app registers its own in ``<app>/admin.py``."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone
from django.utils.timesince import timesince
from oauth2_provider.admin import ApplicationAdmin
from oauth2_provider.forms import ApplicationForm
from oauth2_provider.models import get_application_model, get_grant_model, get_id_token_model

from hub.models import Heartbeat

Application = get_application_model()


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


# What the hub's OAuth endpoints serve: the device authorization grant (RFC 8628), for scripts and devices, and
# the refresh tokens it hands out (no application setting). The toolkit's form also offered the password and
# implicit grants (switched off by the RFC 9700 settings, so such an application could never get a token), the
# authorization-code and OpenID Connect grants (no sign-in-with-the-hub pages, OIDC is off), redirect and logout
# URIs, CORS origins, a signing algorithm and the dynamic/CIMD registration fields, none of which the hub uses.
SUPPORTED_GRANT_TYPES = (
    (Application.GRANT_DEVICE_CODE, "Device code: a script or device shows a code, a person approves it (RFC 8628)"),
)
APPLICATION_FIELDS = (
    "name",
    "client_id",
    "client_type",
    "authorization_grant_type",
    "client_secret",
    "hash_client_secret",
)


class HubApplicationForm(ApplicationForm):
    """The toolkit's application form (its client-secret help stays), offering only what the hub supports."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        grant = self.fields["authorization_grant_type"]
        grant.choices = SUPPORTED_GRANT_TYPES
        grant.initial = Application.GRANT_DEVICE_CODE
        grant.error_messages["invalid_choice"] = (
            "The hub supports only the device code grant: scripts and devices get tokens by a code a person "
            "approves (the password grant is switched off, RFC 9700)."
        )
        self.fields["client_type"].help_text = (
            "Public for a script or device that cannot keep a secret (the usual case); confidential if it can, "
            "and then sends the client secret with each token request."
        )


admin.site.unregister(Application)
# Authorization codes ("Grants") belong to the authorization-code grant and ID tokens to OpenID Connect: the hub
# serves neither, so their lists would stay empty for ever. (Device codes are the toolkit's DeviceGrant model,
# never in its admin: a pending code is a credential, and it lives thirty minutes.)
admin.site.unregister(get_grant_model())
admin.site.unregister(get_id_token_model())


@admin.register(Application)
class HubApplicationAdmin(ApplicationAdmin):
    form = HubApplicationForm
    fields = APPLICATION_FIELDS
    readonly_fields = ()
    list_display = ("pk", "name", "client_type", "authorization_grant_type", "created")
    list_filter = ("client_type", "authorization_grant_type")
