from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    name = "downloads"
    verbose_name = "Downloads"

    def ready(self) -> None:
        # Registration only: the lifespan starts the audit writer in the embedded default.
        from downloads import audit
        from hub import embedded, health

        embedded.register("downloads-audit", audit.writer_for_embedded)
        health.register_check("downloads_audit", audit.health_check)
