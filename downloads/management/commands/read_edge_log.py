"""``python manage.py read_edge_log``: read nginx's edge access log into the audit until SIGTERM (production's
``edge-log`` service)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from downloads.edge_log_reader import EdgeLogReader, ReaderTimings
from downloads.services import edge_log_unparseable_reset
from hub.workers import run_in_foreground


class Command(BaseCommand):
    help = (
        "Follow nginx's JSON access log of edge-served downloads (DOWNLOADS_EDGE_LOG) and store each line once as "
        "an audit row, a download count and a bus event; resumes where the last run committed."
    )

    def add_arguments(self, parser):
        defaults = ReaderTimings()
        parser.add_argument("--path", default="", help="the log to read (default: DOWNLOADS_EDGE_LOG)")
        parser.add_argument(
            "--batch-lines", type=int, default=defaults.batch_lines, help="lines committed together at most"
        )
        parser.add_argument(
            "--batch-seconds",
            type=float,
            default=defaults.batch_seconds,
            help="a batch is committed this long after its first line at the latest",
        )
        parser.add_argument(
            "--reset-unparseable",
            action="store_true",
            help="clear the count of unparseable lines /healthz reports (after reading them in the log) and exit",
        )

    def handle(self, *args, path: str, batch_lines: int, batch_seconds: float, reset_unparseable: bool, **options):
        path = path or settings.DOWNLOADS_EDGE_LOG
        if not path:
            raise CommandError("no log to read: set DOWNLOADS_EDGE_LOG (or pass --path)")
        if reset_unparseable:
            count = edge_log_unparseable_reset(path=path)
            self.stdout.write(f"{path}: {count} unparseable line(s) forgotten")
            return
        if batch_lines < 1 or batch_seconds <= 0:
            raise CommandError("--batch-lines must be at least 1 and --batch-seconds more than 0")
        timings = ReaderTimings(batch_lines=batch_lines, batch_seconds=batch_seconds)
        run_in_foreground(EdgeLogReader(path, timings=timings))
