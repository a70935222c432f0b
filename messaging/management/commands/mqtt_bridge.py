"""``python manage.py mqtt_bridge``: the MQTT bridge in the foreground (production; exactly one per installation)."""

from django.core.management.base import BaseCommand, CommandError

from hub.workers import run_in_foreground
from messaging.bridge import MqttBridge


class Command(BaseCommand):
    help = (
        "Bridge the MQTT broker (MQTT_URL) and the hub: broker messages to browsers, event topics to the broker, "
        "browser publishes to the broker, and the apps' MQTT handlers."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--filter",
            action="append",
            dest="filters",
            help="a topic filter to forward to browsers (repeatable; default MQTT_BRIDGE_FILTERS)",
        )
        parser.add_argument("--no-events", action="store_true", help="do not publish events' topics to the broker")

    def handle(self, *args, filters=None, no_events=False, **options):
        from django.conf import settings

        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not set: there is no broker to bridge")
        run_in_foreground(MqttBridge(filters=filters, consume_events=not no_events))
