from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # Registration only: the embedded lifespan starts these; production runs `manage.py consume_events`.
        from hub import embedded, health
        from hub.api.scopes import register_scopes
        from hub.pages.navigation import Section, register_section
        from messaging import relay
        from messaging.consumers_amqp import EventsDbConsumer, EventsNotifyConsumer

        register_scopes("events", order=30)
        register_scopes("push", order=40)
        register_section(
            Section("live", "Live", "Readings and events as they happen, pushed to this page without reloading."),
            order=20,
        )
        register_section(
            Section(
                "events",
                "Events",
                "The stored event log: what happened in the hub, when and from where.",
                staff_only=True,
            ),
            order=40,
        )

        # The relay: `manage.py relay_outbox` in production.
        embedded.register(relay.RELAY_NAME, relay.embedded_relay)
        health.register_check(f"worker:{relay.RELAY_NAME}", relay.relay_check)
        health.register_check("outbox", relay.outbox_check)
        health.register_check("broker", relay.broker_check)
        # Live push: the events.notify consumer hands each event to the per-process fan-out (messaging.push).
        from messaging.notify import use_notifier
        from messaging.push.notifier import PushNotifier

        use_notifier(PushNotifier)
        from messaging import push

        health.register_check("push", push.health_check)
        # Grant, group, permission and account changes (the admin's) reach open /ws/push sockets.
        from messaging.push import grant_notices

        grant_notices.connect()
        embedded.register("events.db", EventsDbConsumer)
        embedded.register("events.notify", EventsNotifyConsumer)
        health.register_heartbeat(EventsDbConsumer.name)
        health.register_heartbeat(EventsNotifyConsumer.name)

        # MQTT: a malformed MQTT_URL stops start-up here; a broker outage only makes /healthz "degraded".
        from django.conf import settings

        from messaging import mqtt

        if settings.MQTT_URL:
            mqtt.parse_mqtt_url(settings.MQTT_URL)
            health.register_check("mqtt", mqtt.health_check)

        # The MQTT bridge: `manage.py mqtt_bridge` in production; the factory returns None without MQTT_URL.
        from messaging import bridge

        embedded.register(bridge.BRIDGE_NAME, bridge.embedded_bridge)
        if settings.MQTT_URL:
            bridge.bridge_filters()  # a malformed MQTT_BRIDGE_FILTERS stops start-up here
            health.register_check(f"worker:{bridge.BRIDGE_NAME}", bridge.bridge_check)
            health.register_heartbeat(bridge.EVENTS_CONSUMER_NAME)
