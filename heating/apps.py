from django.apps import AppConfig


class HeatingConfig(AppConfig):
    name = "heating"
    verbose_name = "Heating"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registration only: the embedded lifespan starts the radio; production runs `manage.py serial_worker`.
        from django.conf import settings

        from heating import mqtt_handlers
        from heating.health import device_definitions_check, modem_link_check
        from heating.selectors import nodes_matching
        from heating.services import WORKER_HEARTBEAT
        from heating.worker import embedded_radio
        from hub import embedded, health
        from hub.api.scopes import register_scopes
        from hub.api.search import register_search_provider
        from hub.pages.navigation import Section, register_section
        from messaging import mqtt, require_publish_permission
        from messaging.topic_rules import expand_home

        embedded.register(WORKER_HEARTBEAT, embedded_radio)
        health.register_heartbeat(WORKER_HEARTBEAT)
        health.register_check("heating:modem_link", modem_link_check)
        health.register_check("heating:device_definitions", device_definitions_check)
        register_scopes("heating", order=10)
        register_search_provider("nodes", scope="heating:read", search=nodes_matching)
        register_section(Section("home", "Home", "Every room: its temperature, target, mode and heater."), order=10)
        register_section(
            Section("devices", "Devices", "Every radio node: its values, signal and state.", staff_only=True), order=25
        )
        # heating owns the house's action topics: it says what publishing there needs, and messaging enforces it
        # for browsers (the broker's ACL does for MQTT clients). The rule covers every topic the handler acts on.
        require_publish_permission(
            mqtt_handlers.ACTION_TOPICS, mqtt_handlers.SEND_COMMANDS, why="an action topic switches hardware"
        )
        mqtt.subscribe(
            expand_home(mqtt_handlers.ACTION_TOPICS, home_prefix=settings.MQTT_HOME_PREFIX),
            mqtt_handlers.action_received,
        )
        # The rooms' set topics (Home Assistant's commands) change targets, modes and presets: heating.control.
        from heating import room_topics

        for topic_filter in room_topics.SET_TOPICS:
            require_publish_permission(
                topic_filter, mqtt_handlers.CONTROL, why="it changes a room's target, mode or preset"
            )
            mqtt.subscribe(
                expand_home(topic_filter, home_prefix=settings.MQTT_HOME_PREFIX), mqtt_handlers.room_set_received
            )
        # The bridge announces the hub on hub/<HUB_ID>/availability and, on every connection, republishes the
        # rooms' Home Assistant discovery and state.
        mqtt.availability_from(room_topics.availability_topic)
        mqtt.on_connect(room_topics.broker_connected)
