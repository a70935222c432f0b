from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from hub import health

        # MQTT: a malformed MQTT_URL stops start-up here; a broker outage only makes /healthz "degraded".
        from django.conf import settings

        from messaging import mqtt

        if settings.MQTT_URL:
            mqtt.parse_mqtt_url(settings.MQTT_URL)
            health.register_check("mqtt", mqtt.health_check)
