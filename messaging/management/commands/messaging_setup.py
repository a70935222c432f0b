"""``python manage.py messaging_setup``: declare the event bus's exchanges and queues (the compose init service)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kombu import Connection
from kombu.exceptions import OperationalError

from messaging import topology


class Command(BaseCommand):
    help = "Declare the event bus's exchanges and queues on AMQP_URL (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker")

    def handle(self, *args, timeout: float, **options):
        with Connection(settings.AMQP_URL, connect_timeout=timeout) as connection:
            try:
                connection.ensure_connection(max_retries=3, interval_start=1, interval_step=1, timeout=timeout)
                declared = topology.declare(connection)
            except topology.TopologyConflict as exc:
                raise CommandError(str(exc)) from exc
            except (OperationalError, OSError, *connection.connection_errors) as exc:
                raise CommandError(f"the broker at {connection.as_uri()} is unreachable: {exc}") from exc
            kind = declared.db_queue.queue_arguments.get("x-queue-type", "classic")
        self.stdout.write(
            f"declared on {connection.as_uri()}: fanout {declared.fanout.name!r} → {kind} queues "
            f"{declared.db_queue.name!r}, {declared.notify_queue.name!r}; topic {declared.topic.name!r}; "
            f"dead letters {declared.dead_letter.name!r} → {declared.dead_letter_queue.name!r}"
        )
