"""``python manage.py consume_events db|notify``: one of the bus's consumers in the foreground (production)."""

from django.core.management.base import BaseCommand

from hub.workers import run_in_foreground
from messaging.consumers_amqp import CONSUMERS


class Command(BaseCommand):
    help = "Consume the events.db queue (store events) or the events.notify queue (hand them to live push)."

    def add_arguments(self, parser):
        parser.add_argument("which", choices=sorted(CONSUMERS), help="db: the event log; notify: live push")
        parser.add_argument("--batch-size", type=int, help="prefetch and the most messages acked at once")
        parser.add_argument("--flush-ms", type=int, help="longest wait for a batch to fill before processing it")
        parser.add_argument("--max-attempts", type=int, help="failures before a message is dead-lettered")
        parser.add_argument("--retry-max-seconds", type=float, help="longest back-off between retries")

    def handle(self, *args, which: str, **options):
        chosen = {
            "batch_size": options["batch_size"],
            "flush_after": options["flush_ms"] / 1000 if options["flush_ms"] is not None else None,
            "max_attempts": options["max_attempts"],
            "retry_max": options["retry_max_seconds"],
        }
        consumer = CONSUMERS[which]
        timings = consumer.timings_with(**{key: value for key, value in chosen.items() if value is not None})
        worker = consumer(timings=timings)
        run_in_foreground(worker)
