"""``edge_sync``: rebuild the edge markers nginx serves links from (compose's ``init`` runs it at every start)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from downloads.edge import edge_dir, edge_sync


class Command(BaseCommand):
    help = (
        "Write DOWNLOADS_EDGE_DIR's marker for every link nginx may serve by itself (recorded, not revoked, not "
        "capped, not expired) and remove every other file there. Does nothing when DOWNLOADS_EDGE_DIR is empty."
    )

    def handle(self, *args, **options) -> None:
        if not edge_dir():
            self.stdout.write("DOWNLOADS_EDGE_DIR is not set: every download goes through the hub.")
            return
        written, removed = edge_sync()
        self.stdout.write(f"edge markers in {edge_dir()}: {written} written, {removed} removed")
