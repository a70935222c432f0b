"""Reads of the downloads app: the row behind a fetched link, the files an admin can choose, a link's URL."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from downloads.models import AccessLogPosition, DownloadLink
from downloads.signing import LinkParts, UnsafePath, VerifiedLink, resolve_under_root


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """The state a fetch must honour for one URL: the strictest among every recorded link behind it.

    A link with a nonce has its own URL, so one row. A URL issued without one (legacy, or a hub link from before
    nonces) may stand for several rows made with the same fields: it is refused when any of them is revoked,
    used up when any capped one is, and a counted download takes a unit from every capped one.
    """

    ids: tuple[int, ...]  # oldest first
    revoked: bool
    capped: bool
    used_up: bool

    @property
    def id(self) -> int:
        """The row the audit names (the oldest)."""
        return self.ids[0]


def _link_record_sql() -> str:
    # Plain SQL: building this query through the ORM costs far more than running it (docs/benchmarks.md).
    link, customer = DownloadLink._meta, DownloadLink._meta.get_field("customer").related_model._meta
    return (
        f"SELECT l.id, l.revoked_at, l.max_downloads, l.download_count FROM {link.db_table} l "
        f"JOIN {customer.db_table} c ON c.id = l.customer_id "
        "WHERE l.signature = %s AND c.slug = %s AND l.expiry_text = %s AND l.path = %s "
        "ORDER BY l.id"
    )


_LINK_RECORD_SQL: str | None = None


def record_from_rows(rows) -> LinkRecord | None:
    """(id, revoked_at, max_downloads, download_count) rows, oldest first → their combined :class:`LinkRecord`."""
    if not rows:
        return None
    capped = [(max_downloads, count) for _, _, max_downloads, count in rows if max_downloads is not None]
    return LinkRecord(
        ids=tuple(row[0] for row in rows),
        revoked=any(row[1] is not None for row in rows),
        capped=bool(capped),
        used_up=any(count >= max_downloads for max_downloads, count in capped),
    )


_sqlite_lock = threading.Lock()


def sqlite_turn():
    """On SQLite, the download threads of this process take turns for link rows: SQLite has one writer at a
    time anyway, and an in-memory database (the tests') answers "table is locked" at once instead of waiting on
    the busy timeout as a file does. A no-op on other databases."""
    return _sqlite_lock if connection.vendor == "sqlite" else contextlib.nullcontext()


def link_record_for(verified: VerifiedLink) -> LinkRecord | None:
    """The recorded link(s) a verified URL stands for (by signature, then the signed fields), or None."""
    global _LINK_RECORD_SQL
    if _LINK_RECORD_SQL is None:
        _LINK_RECORD_SQL = _link_record_sql()
    with sqlite_turn(), connection.cursor() as cursor:
        cursor.execute(_LINK_RECORD_SQL, [verified.signature, verified.customer, verified.expiry, verified.path])
        rows = cursor.fetchall()
    return record_from_rows(rows)


class LinkRecordCache:
    """Link records seen in the last ``ttl`` seconds, so a busy link costs one query a second, not one a fetch.

    A revocation in this process clears it at once (``downloads.services.link_revoke``); one made in another
    process is seen here within ``ttl``. Counted downloads of capped links always go to the database.
    """

    _MISSING = object()

    def __init__(self, *, ttl: float, max_entries: int = 10_000, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[tuple, tuple[float, LinkRecord | None]] = {}

    def record_for(self, verified: VerifiedLink) -> LinkRecord | None:
        if self.ttl <= 0:
            return link_record_for(verified)
        key = (verified.signature, verified.customer, verified.expiry, verified.path)
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        record = link_record_for(verified)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; the next second refills what is busy
        self._entries[key] = (now + self.ttl, record)
        return record

    def peek(self, verified: VerifiedLink) -> tuple[bool, LinkRecord | None]:
        """(True, record) when a fresh record is in memory (no database work), else (False, None)."""
        entry = self._entries.get((verified.signature, verified.customer, verified.expiry, verified.path))
        if entry is not None and entry[0] > self.clock():
            return True, entry[1]
        return False, None

    def forget(self, verified: VerifiedLink) -> None:
        self._entries.pop((verified.signature, verified.customer, verified.expiry, verified.path), None)

    def clear(self) -> None:
        self._entries.clear()


def customer_time_zone(slug: str) -> str:
    """The zone a customer's times are shown in ("" when none is set or the customer is unknown)."""
    from downloads.models import Customer

    return Customer.objects.filter(slug=slug).values_list("time_zone", flat=True).first() or ""


#: The process's cache (the download app reads through it; services clear it when a link changes).
link_records = LinkRecordCache(ttl=getattr(settings, "DOWNLOADS_LINK_CACHE_SECONDS", 1.0))


def downloads_base_url() -> str:
    """Where links start: the dedicated downloads host's root, else the hub's public URL and the prefix."""
    if settings.DOWNLOADS_HOST:
        scheme = urlsplit(settings.HUB_PUBLIC_URL).scheme
        return f"{scheme}://{settings.DOWNLOADS_HOST}/"
    return settings.HUB_PUBLIC_URL + settings.DOWNLOADS_PREFIX


def link_url(link: DownloadLink) -> str:
    return downloads_base_url() + LinkParts(link.signature, link.customer.slug, link.expiry_text, link.path).as_path()


def downloads_root_files(*, limit: int = 5000) -> list[str]:
    """Relative paths of the regular files under DOWNLOADS_ROOT (symlinks only when they stay inside), sorted."""
    root = settings.DOWNLOADS_ROOT
    found: list[str] = []
    if not os.path.isdir(root):
        return found
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            relative = os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/")
            try:
                if not resolve_under_root(root, relative).is_file():
                    continue
            except UnsafePath:
                continue
            found.append(relative)
            if len(found) >= limit:
                return sorted(found)
    return sorted(found)


def links_overview(*, recent: int = 20) -> dict:
    """What the dashboard's Downloads page shows: links per state, the newest links, the latest attempts."""
    from downloads.models import DownloadEvent, LinkState

    links = DownloadLink.objects.select_related("customer")
    return {
        "counts": {state.label: links.in_state(state).count() for state in LinkState},
        "links": list(links[:recent]),
        "attempts": list(DownloadEvent.objects.select_related("link")[:recent]),
    }


#: The audit outcomes of an attempt that handed out the file's bytes (whole, or a range of them).
SERVED_OUTCOMES = ("served", "partial")


def links_ever_served(link_ids) -> dict[int, int]:
    """Of ``link_ids``, the links that were ever downloaded: id → how many served attempts the audit holds (at
    least 1 for a link whose counter moved; the audit may lack rows a crash or the edge log has not yet given)."""
    from django.db.models import Count

    from downloads.models import DownloadEvent

    served = dict(
        DownloadEvent.objects.filter(link_id__in=link_ids, outcome__in=SERVED_OUTCOMES)
        .values_list("link_id")
        .annotate(count=Count("id"))
        .values_list("link_id", "count")
    )
    counted = DownloadLink.objects.filter(pk__in=link_ids, download_count__gt=0)
    for link_id, count in counted.values_list("pk", "download_count"):
        served[link_id] = max(served.get(link_id, 0), count)
    return served


def edge_log_position(*, path: str) -> AccessLogPosition | None:
    """How far the edge access log at ``path`` has been read into the audit (None: never)."""
    return AccessLogPosition.objects.filter(path=path).first()
