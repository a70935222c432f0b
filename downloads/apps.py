from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DownloadsConfig(AppConfig):
    name = "downloads"
    verbose_name = "Downloads"

    def ready(self) -> None:
        # Registration only: the lifespan starts the audit writer in the embedded default.
        from django.conf import settings

        from downloads import audit, edge_log_reader, keys, uploads
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
        # `make run` and compose's init service migrate before anything serves: the downloads root (a folder, or
        # the mounted volume) is created then, so the admin finds it; an upload creates it too if it went missing.
        post_migrate.connect(uploads.root_after_migrate, sender=self, dispatch_uid="downloads-root")
        health.register_check("downloads_audit", audit.health_check)
        if settings.DOWNLOADS_EDGE_LOG:
            # The reader runs as its own service (`manage.py read_edge_log`); every process can report on it.
            health.register_check("downloads_edge_log", edge_log_reader.health_check)
