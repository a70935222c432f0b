"""The event bus (AMQP through kombu), the event log, live push and the MQTT bridge."""
