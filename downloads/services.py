"""Writes of the downloads app: customers, links (create, revoke), the audit and the download counter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from downloads import events
from downloads.models import Customer, DownloadEvent, DownloadLink
from downloads.selectors import link_records
from downloads.signing import (
    LegacyConfig,
    UnsafePath,
    format_legacy_expiry,
    parse_legacy_expiry,
    resolve_under_root,
    sign_legacy_link,
    sign_link,
)


class LinkError(ValueError):
    """A link that cannot be made as asked (the message says why, for the admin or the command line)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field  # which input was wrong: path, expires_at, max_downloads or legacy


def customer_create(*, slug: str, name: str = "", contact: str = "", notes: str = "") -> Customer:
    customer = Customer(slug=slug, name=name or slug, contact=contact, notes=notes)
    customer.full_clean()
    customer.save()
    return customer


def legacy_config() -> LegacyConfig | None:
    if not settings.DOWNLOADS_LEGACY_SECRET:
        return None
    return LegacyConfig(settings.DOWNLOADS_LEGACY_SECRET, settings.DOWNLOADS_LEGACY_TZ)


def link_create(
    *,
    customer: Customer,
    path: str,
    expires_at: datetime,
    max_downloads: int | None = None,
    note: str = "",
    created_by: AbstractBaseUser | None = None,
    legacy: bool = False,
    now: datetime | None = None,
) -> DownloadLink:
    """Sign and record a link to ``path`` (relative to DOWNLOADS_ROOT, an existing file) until ``expires_at``."""
    now = now or timezone.now()
    if timezone.is_naive(expires_at):
        raise LinkError("the expiry needs a time zone", field="expires_at")
    try:
        real = resolve_under_root(settings.DOWNLOADS_ROOT, path)
    except UnsafePath as exc:
        raise LinkError(f"{path!r} is not a file under the downloads root ({exc})", field="path") from None
    if not real.is_file():
        raise LinkError(f"no file {path!r} under the downloads root {settings.DOWNLOADS_ROOT}", field="path")
    if legacy:
        config = legacy_config()
        if config is None:
            raise LinkError("legacy links need DOWNLOADS_LEGACY_SECRET to be set", field="legacy")
        # The old format has minutes in the legacy zone: round down so the link never outlives what was asked.
        expiry_text = format_legacy_expiry(expires_at, config.zone)
        parts = sign_legacy_link(legacy=config, customer=customer.slug, expiry=expiry_text, path=path)
        key_id = ""
        expires_at = parse_legacy_expiry(expiry_text, config.zone)
    else:
        expires_at = expires_at.replace(microsecond=0)
        parts = sign_link(keys=settings.DOWNLOADS_KEYS, customer=customer.slug, expires_at=expires_at, path=path)
        key_id = settings.DOWNLOADS_KEYS.active_id
    if expires_at <= now:
        raise LinkError(f"the expiry {expires_at.isoformat()} is in the past", field="expires_at")
    if max_downloads is not None and max_downloads < 1:
        raise LinkError(
            "the maximum number of downloads must be at least 1 (or empty for no limit)", field="max_downloads"
        )
    with transaction.atomic():
        link = DownloadLink.objects.create(
            customer=customer,
            path=path,
            expires_at=expires_at,
            max_downloads=max_downloads,
            note=note,
            format=DownloadLink.Format.LEGACY if legacy else DownloadLink.Format.HUB,
            key_id=key_id,
            signature=parts.signature,
            expiry_text=parts.expiry,
            created_by=created_by,
        )
        events.publish_link_event("downloads.link_created", link, by=created_by)
    return link


def link_revoke(*, link: DownloadLink, by: AbstractBaseUser | None = None, now: datetime | None = None) -> bool:
    """Revoke ``link`` (at once, for every later fetch); False when it already was."""
    now = now or timezone.now()
    with transaction.atomic():
        changed = DownloadLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now)
        if changed:
            link.revoked_at = now
            events.publish_link_event("downloads.link_revoked", link, by=by)
            transaction.on_commit(link_records.clear)  # this process refuses it at once; others within a second
    return bool(changed)


def links_revoke(*, links: Sequence[DownloadLink], by: AbstractBaseUser | None = None) -> int:
    return sum(link_revoke(link=link, by=by) for link in links)


def link_download_claim(*, link_id: int, now: datetime) -> bool:
    """Count one download of a capped link, atomically: False when it is revoked or its cap is reached.

    One conditional UPDATE, so two processes racing for the last download cannot both win.
    """
    return bool(
        DownloadLink.objects.filter(pk=link_id, revoked_at__isnull=True)
        .filter(Q(max_downloads__isnull=True) | Q(download_count__lt=F("max_downloads")))
        .update(download_count=F("download_count") + 1, last_fetched_at=now)
    )


#: The audit row's columns, as the batch writer inserts them and the API shows them (after its id).
AUDIT_FIELDS = (
    "link",
    "customer",
    "path",
    "ip",
    "user_agent",
    "method",
    "status",
    "outcome",
    "range",
    "bytes_sent",
    "accel",
    "at",
)


def _insert_events_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(DownloadEvent._meta.get_field(name).column) for name in AUDIT_FIELDS)
    placeholders = ", ".join(["%s"] * len(AUDIT_FIELDS))
    return f"INSERT INTO {quote(DownloadEvent._meta.db_table)} ({columns}) VALUES ({placeholders})"


def attempts_record(*, attempts: Sequence) -> None:
    """Write a batch of audited attempts (``downloads.audit.Attempt``) and their effects in one transaction.

    One ``executemany`` of plain rows: model instances and ``bulk_create`` cost ~100 µs a row here, more than
    serving the download they describe.
    """
    for attempt in attempts:
        # A request path may carry %00: PostgreSQL stores no NUL in text or JSON, and one such row would fail
        # its whole batch on every retry.
        for name in ("customer", "path", "user_agent"):
            value = getattr(attempt, name)
            if "\x00" in value:
                setattr(attempt, name, value.replace("\x00", "\N{REPLACEMENT CHARACTER}"))
    counts: dict[int, int] = {}
    last_fetched: dict[int, datetime] = {}
    for attempt in attempts:
        if attempt.link_id is not None and attempt.served:
            last_fetched[attempt.link_id] = max(attempt.at, last_fetched.get(attempt.link_id, attempt.at))
            if attempt.count_pending:
                counts[attempt.link_id] = counts.get(attempt.link_id, 0) + 1
    ops = connection.ops
    with transaction.atomic():
        referenced = {attempt.link_id for attempt in attempts if attempt.link_id is not None}
        existing = set(DownloadLink.objects.filter(pk__in=referenced).values_list("pk", flat=True))
        rows = [
            (
                # A link deleted since the fetch: the row keeps customer and path.
                attempt.link_id if attempt.link_id in existing else None,
                attempt.customer[:200],
                attempt.path[:1088],
                ops.adapt_ipaddressfield_value(attempt.ip),
                attempt.user_agent[:512],
                attempt.method[:8],
                attempt.status,
                attempt.outcome[:32],
                attempt.range[:100],
                attempt.bytes_sent,
                attempt.accel,
                ops.adapt_datetimefield_value(attempt.at),
            )
            for attempt in attempts
        ]
        with connection.cursor() as cursor:
            cursor.executemany(_insert_events_sql(), rows)
        for link_id in existing & last_fetched.keys():
            DownloadLink.objects.filter(pk=link_id).update(
                download_count=F("download_count") + counts.get(link_id, 0),
                last_fetched_at=last_fetched[link_id],
            )
        events.publish_attempts(attempts)
