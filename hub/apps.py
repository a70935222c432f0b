from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = "Hub"

    def ready(self) -> None:
        # Registration only: nothing starts here (that would start workers under migrate and in tests).
        from hub import health

        health.register_builtin_checks()
