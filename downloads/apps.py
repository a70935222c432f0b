from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    name = "downloads"
    verbose_name = "Downloads"

    def ready(self) -> None:
        # Registration only: the lifespan starts the audit writer in the embedded default.
        from downloads import audit, keys
        from hub import embedded, health
        from hub.api.scopes import register_scopes
        from hub.pages.navigation import Section, register_section

        # The settings keep DOWNLOADS_KEYS as text: a malformed value stops start-up here, naming the variable.
        keys.key_ring()
        register_scopes("downloads", order=20)
        register_section(
            Section(
                "downloads",
                "Downloads",
                "Expiring signed links for customers and the audit of every download.",
                staff_only=True,
            ),
            order=30,
        )

        embedded.register("downloads-audit", audit.writer_for_embedded)
        health.register_check("downloads_audit", audit.health_check)
