"""``manage.py serial_worker``: the panStamp modem's worker (production's service), until SIGTERM/SIGINT."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from heating.worker import SerialWorker, WorkerTimings
from hub.workers import run_in_foreground


class Command(BaseCommand):
    help = "Speak SWAP to the panStamp network through the modem on SERIAL_PORT (or --port): readings in, commands out."

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", default=settings.SERIAL_PORT, help="pyserial URL: /dev/ttyUSB0, socket://host:port (SERIAL_PORT)"
        )
        defaults = WorkerTimings()
        parser.add_argument(
            "--silence",
            type=float,
            default=defaults.node_silence,
            help="seconds without a packet before a node counts as unreachable (default %(default)s)",
        )
        parser.add_argument(
            "--discovery-interval",
            type=float,
            default=defaults.discovery_interval,
            help="seconds between broadcast product-code queries (default %(default)s)",
        )

    def handle(self, *args, **options):
        if not options["port"]:
            raise CommandError("no modem: set SERIAL_PORT or give --port (e.g. /dev/ttyUSB0 or socket://host:5331)")
        if options["silence"] <= 0 or options["discovery_interval"] <= 0:
            raise CommandError("--silence and --discovery-interval must be above 0")
        timings = WorkerTimings(node_silence=options["silence"], discovery_interval=options["discovery_interval"])
        run_in_foreground(SerialWorker(options["port"], timings=timings))
