from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    name = "downloads"
    verbose_name = "Downloads"

    def ready(self) -> None:
        # Registration only: the lifespan starts the audit writer in the embedded default.
        from downloads import audit, keys
        from hub import embedded, health

        # The settings keep DOWNLOADS_KEYS as text: a malformed value stops start-up here, naming the variable.
        keys.key_ring()

        embedded.register("downloads-audit", audit.writer_for_embedded)
        health.register_check("downloads_audit", audit.health_check)
