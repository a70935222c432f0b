from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = "Hub"

    def ready(self) -> None:
        # Registration only: nothing starts here (that would start workers under migrate and in tests).
        from django.conf import settings

        from hub import embedded, health
        from hub.api import search, users
        from hub.api.scopes import register_scopes
        from hub.beat import embedded_beat

        health.register_builtin_checks()
        # Each app registers its own scopes (and menu sections) from its ready(), with its place in the list; the
        # hub's own users scope comes after the apps' (whatever the INSTALLED_APPS order).
        register_scopes("users", order=50)
        search.register_search_provider("users", scope="users:read", search=users.users_matching, staff_only=True)
        if settings.EMBEDDED:
            # Production runs `celery -A hub beat` instead.
            embedded.register("beat", embedded_beat)


class HubAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the hub's site (menu grouping, titles) as the default ``admin.site``."""

    # Not the "hub" entry's config: that stays HubConfig (AdminConfig itself sets default = True).
    default = False
    default_site = "hub.admin_site.HubAdminSite"
