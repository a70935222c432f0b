"""``python manage.py relay_outbox``: publish the outbox to the broker until SIGTERM (production's relay service)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from hub.workers import run_in_foreground
from messaging.relay import OutboxRelay, RelayTimings


class Command(BaseCommand):
    help = (
        "Publish outbox rows to the event bus in order, with batched publisher confirms. "
        "Several may run; one publishes at a time, the others wait on a lock."
    )

    def add_arguments(self, parser):
        defaults = RelayTimings()
        parser.add_argument(
            "--batch-size", type=int, default=defaults.batch_size, help="rows per batch (one confirm wait each)"
        )
        parser.add_argument(
            "--confirm-timeout", type=float, default=defaults.confirm_timeout, help="seconds to wait for a batch's acks"
        )

    def handle(self, *args, batch_size: int, confirm_timeout: float, **options):
        timings = RelayTimings(batch_size=batch_size, confirm_timeout=confirm_timeout)
        run_in_foreground(OutboxRelay(timings=timings))
