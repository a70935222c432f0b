from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = "Hub"

    def ready(self) -> None:
        # Registration only: nothing starts here (that would start workers under migrate and in tests).
        from django.conf import settings

        from hub import embedded, health
        from hub.beat import embedded_beat

        health.register_builtin_checks()
        if settings.EMBEDDED:
            # Production runs `celery -A hub beat` instead.
            embedded.register("beat", embedded_beat)
