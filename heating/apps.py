from django.apps import AppConfig


class HeatingConfig(AppConfig):
    name = "heating"
    verbose_name = "Heating"
    default_auto_field = "django.db.models.BigAutoField"
