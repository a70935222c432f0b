"""Writes of the downloads app: customers, links (create, revoke), the audit and the download counter."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from downloads import edge, events
from downloads.keys import key_ring
from downloads.models import AccessLogPosition, CountedDownload, Customer, DownloadEvent, DownloadLink, LinkState
from downloads.selectors import LinkRecord, link_records, sqlite_turn
from downloads.signing import (
    LegacyConfig,
    LinkParts,
    UnsafePath,
    format_legacy_expiry,
    link_nonce,
    parse_legacy_expiry,
    resolve_under_root,
    sign_legacy_link,
    sign_link,
)

logger = logging.getLogger(__name__)

# What the rows can hold, from the models' own fields: longer values are cut, never refused.
_COUNTED_USER_AGENT = CountedDownload._meta.get_field("user_agent").max_length
_EVENT_LENGTH = {field.name: field.max_length for field in DownloadEvent._meta.fields if field.max_length}


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
    _check_offered(path)
    if legacy:
        parts, expires_at = _legacy_signed(customer=customer, path=path, expires_at=expires_at)
        key_id = ""
    else:
        expires_at = expires_at.replace(microsecond=0)
        parts = sign_link(keys=key_ring(), customer=customer.slug, expires_at=expires_at, path=path)
        key_id = key_ring().active_id
    if expires_at <= now:
        raise LinkError(f"the expiry {expires_at.isoformat()} is in the past", field="expires_at")
    if max_downloads is not None and max_downloads < 1:
        raise LinkError(
            "the maximum number of downloads must be at least 1 (or empty for no limit)", field="max_downloads"
        )
    with transaction.atomic():
        if legacy:
            _refuse_legacy_twin(customer=customer, signature=parts.signature, expiry_text=parts.expiry, path=path)
        link = _link_insert(
            parts,
            legacy=legacy,
            customer=customer,
            path=path,
            expires_at=expires_at,
            max_downloads=max_downloads,
            note=note,
            format=DownloadLink.Format.LEGACY if legacy else DownloadLink.Format.HUB,
            key_id=key_id,
            expiry_text=parts.expiry,
            created_by=created_by,
        )
        events.publish_link_event("downloads.link_created", link, by=created_by)
        edge.link_publish_on_commit(link)  # nginx may serve it by itself once the row is there for the hub too
    return link


def _check_offered(path: str) -> None:
    """``path`` names a file under DOWNLOADS_ROOT, or :class:`LinkError` on ``path``."""
    try:
        real = resolve_under_root(settings.DOWNLOADS_ROOT, path)
    except UnsafePath as exc:
        raise LinkError(f"{path!r} is not a file under the downloads root ({exc})", field="path") from None
    if not real.is_file():
        raise LinkError(f"no file {path!r} under the downloads root {settings.DOWNLOADS_ROOT}", field="path")


def _legacy_signed(*, customer: Customer, path: str, expires_at: datetime) -> tuple[LinkParts, datetime]:
    """A legacy link's parts and the expiry it can carry."""
    config = legacy_config()
    if config is None:
        raise LinkError("legacy links need DOWNLOADS_LEGACY_SECRET to be set", field="legacy")
    # The old format has minutes in the legacy zone: round down so the link never outlives what was asked.
    expiry_text = format_legacy_expiry(expires_at, config.zone)
    try:
        parts = sign_legacy_link(legacy=config, customer=customer.slug, expiry=expiry_text, path=path)
    except ValueError as exc:
        raise LinkError(str(exc), field="legacy") from None
    return parts, parse_legacy_expiry(expiry_text, config.zone)


def _link_insert(parts: LinkParts, *, legacy: bool, **fields) -> DownloadLink:
    for attempt in range(3):
        try:
            # A savepoint: two links drawing the same 48-bit nonce for the same fields is next to impossible,
            # but the unique constraint would then refuse the row, and a fresh nonce is all it takes.
            with transaction.atomic():
                return DownloadLink.objects.create(
                    signature=parts.signature, nonce=link_nonce(parts.signature), **fields
                )
        except IntegrityError:
            if legacy or attempt == 2:
                raise
            parts = sign_link(
                keys=key_ring(), customer=fields["customer"].slug, expires_at=fields["expires_at"], path=fields["path"]
            )
    raise AssertionError("unreachable: the third refusal is raised")


def _refuse_legacy_twin(*, customer: Customer, signature: str, expiry_text: str, path: str) -> None:
    """A legacy URL carries nothing of its own: a second link with the same fields would share the first's URL,
    and so its revocation and cap."""
    # Two requests at once must not both find no twin and both write: the customer's row lock makes them take
    # turns until the first commits (PostgreSQL; SQLite's IMMEDIATE transactions take turns already).
    list(Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk", flat=True))
    twin = (
        DownloadLink.objects.filter(
            signature=signature,
            customer=customer,
            expiry_text=expiry_text,
            path=path,
            format=DownloadLink.Format.LEGACY,
        )
        .order_by("id")
        .first()
    )
    if twin is None:
        return
    state = twin.state()
    # A revoked or used-up link keeps its URL refused for good: sending it again would not help.
    advice = f"send link #{twin.pk} again, " if state == LinkState.ACTIVE else "its URL stays refused: "
    raise LinkError(
        f"Legacy link #{twin.pk} (created {twin.created_at:%Y-%m-%d %H:%M} UTC, {state.label}) already has this "
        f"customer, file and expiry, and a legacy URL cannot tell two links apart: {advice}"
        "choose another expiry, or make a hub-format link",
        field="legacy",
    )


def link_revoke(*, link: DownloadLink, by: AbstractBaseUser | None = None, now: datetime | None = None) -> bool:
    """Revoke ``link`` (at once, for every later fetch); False when it already was."""
    now = now or timezone.now()
    with transaction.atomic():
        edge.signature_withdraw(link.signature)  # nginx hands its fetches to the hub from now on
        changed = DownloadLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now)
        if changed:
            link.revoked_at = now
            events.publish_link_event("downloads.link_revoked", link, by=by)
            transaction.on_commit(link_records.clear)  # this process refuses it at once; others within a second
    return bool(changed)


def links_revoke(*, links: Sequence[DownloadLink], by: AbstractBaseUser | None = None) -> int:
    with transaction.atomic():  # all or none: an edge folder that cannot be changed refuses the whole batch
        return sum(link_revoke(link=link, by=by) for link in links)


def links_delete(*, links: Sequence[DownloadLink]) -> int:
    """Delete ``links`` (whoever calls this has decided they may go) and take them off the edge; returns how many."""
    with transaction.atomic():
        for link in links:
            edge.signature_withdraw(link.signature)
        DownloadLink.objects.filter(pk__in=[link.pk for link in links]).delete()
        transaction.on_commit(link_records.clear)  # a deleted link answers "Link revoked" at once here too
    return len(links)


class _CountingSql:
    """The statements of a counted download, built once: building each through the ORM cost more than running it
    (docs/benchmarks.md; the same reason as the link lookup's plain SQL in ``downloads.selectors``)."""

    def __init__(self) -> None:
        q = connection.ops.quote_name
        link, counted = q(DownloadLink._meta.db_table), q(CountedDownload._meta.db_table)
        self.claim = (
            f"UPDATE {link} SET download_count = download_count + 1, last_fetched_at = %s "
            "WHERE id = %s AND revoked_at IS NULL AND (max_downloads IS NULL OR download_count < max_downloads)"
        )
        self.start = (
            f"INSERT INTO {counted} (link_id, ip, user_agent, started_at, last_at, bytes_served) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        )
        # The newest download of this link by this client, continued only if recent and within its byte budget.
        newest = (
            f"SELECT id FROM {counted} WHERE link_id = %s AND {{ip}} AND user_agent = %s "
            "ORDER BY started_at DESC, id DESC LIMIT 1"
        )
        resume = (
            f"UPDATE {counted} SET bytes_served = bytes_served + %s, last_at = %s "
            f"WHERE id = ({newest}) AND last_at >= %s AND bytes_served <= %s"
        )
        self.resume = {True: resume.format(ip="ip IS NULL"), False: resume.format(ip="ip = %s")}


_counting_sql: dict[str, _CountingSql] = {}


def _sql() -> _CountingSql:
    statements = _counting_sql.get(connection.vendor)
    if statements is None:
        statements = _counting_sql[connection.vendor] = _CountingSql()
    return statements


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def link_download_claim(*, link_id: int, now: datetime) -> bool:
    """Count one download of a capped link, atomically: False when it is revoked or its cap is reached.

    One conditional UPDATE, so two processes racing for the last download cannot both win.
    """
    return _execute(_sql().claim, [connection.ops.adapt_datetimefield_value(now), link_id]) == 1


def _links_download_claim(*, link_ids: Sequence[int], now: datetime) -> bool:
    """:func:`link_download_claim` for a URL shared by several rows: all of them count it, or none does."""
    rows = list(
        DownloadLink.objects.select_for_update()
        .filter(pk__in=link_ids)
        .order_by("pk")
        .values_list("revoked_at", "max_downloads", "download_count")
    )
    if len(rows) != len(link_ids) or any(
        revoked_at is not None or (cap is not None and count >= cap) for revoked_at, cap, count in rows
    ):
        return False
    DownloadLink.objects.filter(pk__in=link_ids).update(download_count=F("download_count") + 1, last_fetched_at=now)
    return True


def link_download_start(
    *, record: LinkRecord, ip: str | None, user_agent: str, bytes_planned: int, now: datetime
) -> bool:
    """Start a counted download of a capped link: take one unit of its cap (of every capped row behind the URL)
    and remember who started it and how many bytes it was handed. False, and nothing changed, when no unit is
    left or the link is revoked."""
    with sqlite_turn():
        return _link_download_start(record=record, ip=ip, user_agent=user_agent, bytes_planned=bytes_planned, now=now)


def _link_download_start(*, record: LinkRecord, ip, user_agent: str, bytes_planned: int, now: datetime) -> bool:
    if len(record.ids) == 1:
        # The conditional UPDATE alone decides the cap, exactly, however many fetches race; the download's row
        # follows it outside a transaction (a continuation racing ahead of that row counts as a new download).
        claimed = link_download_claim(link_id=record.id, now=now)
    else:
        with transaction.atomic():
            claimed = _links_download_claim(link_ids=record.ids, now=now)
    if claimed:
        ops = connection.ops
        at = ops.adapt_datetimefield_value(now)
        try:
            _execute(
                _sql().start,
                [
                    record.id,
                    ops.adapt_ipaddressfield_value(ip),
                    user_agent[:_COUNTED_USER_AGENT],
                    at,
                    at,
                    bytes_planned,
                ],
            )
        except DatabaseError:
            # The unit is taken: serve it. Without the row a later Range from this client counts anew (stricter).
            logger.exception("downloads: could not record the start of a counted download of link %s", record.id)
    return claimed


def link_download_resume(
    *,
    record: LinkRecord,
    ip: str | None,
    user_agent: str,
    bytes_planned: int,
    file_size: int,
    window: timedelta,
    now: datetime,
) -> bool:
    """Serve a Range that skips byte 0 as the continuation of the newest counted download of this link from the
    same address and browser: True (and its bytes added) only while that download's last request is within
    ``window`` and the bytes it has been handed stay at most twice the file's size.

    One conditional UPDATE of that download's row, so parallel continuations cannot overspend its budget.
    """
    ops = connection.ops
    params = [bytes_planned, ops.adapt_datetimefield_value(now), record.id]
    if ip is not None:
        params.append(ops.adapt_ipaddressfield_value(ip))
    params += [
        user_agent[:_COUNTED_USER_AGENT],
        ops.adapt_datetimefield_value(now - window),
        2 * file_size - bytes_planned,
    ]
    with sqlite_turn():
        return _execute(_sql().resume[ip is None], params) == 1


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
    names = (*AUDIT_FIELDS, "attempt_id")
    columns = ", ".join(quote(DownloadEvent._meta.get_field(name).column) for name in names)
    placeholders = ", ".join(["%s"] * len(names))
    return f"INSERT INTO {quote(DownloadEvent._meta.db_table)} ({columns}) VALUES ({placeholders})"


def _audit_columns() -> str:
    quote = connection.ops.quote_name
    return ", ".join(quote(DownloadEvent._meta.get_field(name).column) for name in (*AUDIT_FIELDS, "attempt_id"))


def attempts_record(*, attempts: Sequence, skip_recorded: bool = False) -> int:
    """Write a batch of audited attempts (``downloads.audit.Attempt``) and their effects in one transaction;
    returns how many were written.

    On PostgreSQL the rows go in by one COPY, on SQLite by one ``executemany`` of plain rows: model instances and
    ``bulk_create`` cost more per row than serving the download they describe (docs/benchmarks.md).
    ``skip_recorded`` (a journal's replay) leaves out attempts whose ``attempt_id`` is already there: the process
    may have died after their batch's commit, before it let go of their journal lines.
    """
    if skip_recorded:
        wanted = [attempt.attempt_id for attempt in attempts if attempt.attempt_id]
        recorded = {
            value.hex
            for value in DownloadEvent.objects.filter(attempt_id__in=wanted).values_list("attempt_id", flat=True)
        }
        attempts = [attempt for attempt in attempts if attempt.attempt_id not in recorded]
        if not attempts:
            return 0
    with transaction.atomic():
        _attempts_write(attempts, once=False)
    return len(attempts)


def edge_batch_record(*, attempts: Sequence, position: dict) -> int:
    """Store a batch of the edge access log (``downloads.edge_log_reader``): each attempt at most once by its
    ``attempt_id`` (a line read again after a kill is skipped), its effects as :func:`attempts_record` has them,
    and ``position`` (the AccessLogPosition's fields, ``path`` first) in the SAME transaction, so the log and the
    audit never disagree whatever moment the reader dies. Returns how many attempts were new."""
    fields = dict(position)
    path = fields.pop("path")
    with transaction.atomic():
        written = _attempts_write(attempts, once=True) if attempts else []
        fields["updated_at"] = timezone.now()
        if not AccessLogPosition.objects.filter(path=path).update(**fields):
            AccessLogPosition.objects.create(path=path, **fields)
    return len(written)


def edge_log_unparseable_reset(*, path: str) -> int:
    """Clear the count of unparseable lines (after someone looked at them); returns the count it had."""
    with transaction.atomic():
        row = AccessLogPosition.objects.select_for_update().filter(path=path).first()
        if row is None:
            return 0
        AccessLogPosition.objects.filter(pk=row.pk).update(lines_unparseable=0)
        return row.lines_unparseable


def _attempts_write(attempts: Sequence, *, once: bool) -> list:
    """The audit rows, download counts and bus events of ``attempts``, in the caller's transaction; with ``once``,
    attempts whose ``attempt_id`` is already stored are left out of all three. Returns the attempts written."""
    for attempt in attempts:
        # A request path may carry %00: PostgreSQL stores no NUL in text or JSON, and one such row would fail
        # its whole batch on every retry.
        for name in ("customer", "path", "user_agent"):
            value = getattr(attempt, name)
            if "\x00" in value:
                setattr(attempt, name, value.replace("\x00", "\N{REPLACEMENT CHARACTER}"))
    existing = _links_lock({attempt.link_id for attempt in attempts if attempt.link_id is not None})
    postgresql = connection.vendor == "postgresql"
    if once and postgresql:
        written = _copy_once(attempts, _audit_rows(attempts, existing))
    else:
        written = _not_recorded(attempts) if once else list(attempts)
        if written:
            rows = _audit_rows(written, existing)
            if postgresql:
                _copy_rows(rows)
            else:
                _executemany_rows(rows)
    _links_count(written, existing)
    if written:
        events.publish_attempts(written)
    return written


def _links_lock(referenced: set[int]) -> set[int]:
    """Which of the links the batch names still exist. On PostgreSQL their rows are locked too, in id order, for
    the count's UPDATE at the end of the batch: two writers (the web processes' and the edge log's) then never
    wait on each other in a cycle. One ``= ANY(array)``: an ``IN`` list of thousands of parameters cost more than
    the rest of the look-up."""
    if not referenced:
        return set()
    if connection.vendor != "postgresql":
        return set(DownloadLink.objects.filter(pk__in=referenced).values_list("pk", flat=True))
    table = connection.ops.quote_name(DownloadLink._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
            [_array_literal(sorted(referenced))],
        )
        return {row[0] for row in cursor.fetchall()}


def _audit_rows(attempts: Sequence, existing: set[int]) -> list[tuple]:
    ops = connection.ops
    postgresql = connection.vendor == "postgresql"
    length = _EVENT_LENGTH
    customer, path, user_agent = length["customer"], length["path"], length["user_agent"]
    method, outcome, range_ = length["method"], length["outcome"], length["range"]
    attempt_id = DownloadEvent._meta.get_field("attempt_id")
    return [
        (
            # A link deleted since the fetch: the row keeps customer and path.
            attempt.link_id if attempt.link_id in existing else None,
            attempt.customer[:customer],
            attempt.path[:path],
            # COPY hands PostgreSQL text it parses itself; SQLite wants Django's own forms.
            attempt.ip if postgresql else ops.adapt_ipaddressfield_value(attempt.ip),
            attempt.user_agent[:user_agent],
            attempt.method[:method],
            attempt.status,
            attempt.outcome[:outcome],
            attempt.range[:range_],
            attempt.bytes_sent,
            attempt.accel,
            attempt.at if postgresql else ops.adapt_datetimefield_value(attempt.at),
            (attempt.attempt_id or None)
            if postgresql
            else (attempt_id.get_db_prep_value(attempt.attempt_id, connection) if attempt.attempt_id else None),
        )
        for attempt in attempts
    ]


def _copy_rows(rows: list[tuple]) -> None:
    """PostgreSQL: the rows by one COPY."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        copy_sql = f"COPY {quote(DownloadEvent._meta.db_table)} ({_audit_columns()}) FROM STDIN"
        with cursor.cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)


# The edge reader's batch goes through this scratch table (one per connection, not WAL-logged, emptied at each
# commit): COPY has no ON CONFLICT, and a line read twice must be stored once. A look-up of the batch's ids before
# a plain COPY cost PostgreSQL more (bench/download_audit.py: about 37 against 28 µs an attempt).
_EDGE_BATCH_TABLE = "downloads_edge_batch"


def _copy_once(attempts: Sequence, rows: list[tuple]) -> list:
    """PostgreSQL: ``rows`` (of ``attempts``) by COPY into the scratch table, then into the audit but for the ids
    it already holds; returns the attempts written (the first of each id)."""
    quote = connection.ops.quote_name
    table, columns, attempt_id = quote(DownloadEvent._meta.db_table), _audit_columns(), quote("attempt_id")
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_EDGE_BATCH_TABLE} ON COMMIT DELETE ROWS AS "
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY {_EDGE_BATCH_TABLE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # The ids come back as text without dashes, as the attempts hold them (UUID objects cost more to load).
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_EDGE_BATCH_TABLE} "
            f"ON CONFLICT ({attempt_id}) DO NOTHING RETURNING replace({attempt_id}::text, '-', '')"
        )
        stored = {value for (value,) in cursor.fetchall()}
    return _first_of_each(attempts, stored)


def _executemany_rows(rows: list[tuple]) -> None:
    """SQLite: one ``executemany``."""
    with connection.cursor() as cursor:
        cursor.executemany(_insert_events_sql(), rows)


def _not_recorded(attempts: Sequence) -> list:
    """SQLite: the attempts whose ``attempt_id`` the audit does not hold yet, each id once (its first line).

    Looked up before the insert, in the batch's transaction: SQLite's writers take turns, so none can appear in
    between.
    """
    wanted = sorted({attempt.attempt_id for attempt in attempts if attempt.attempt_id})
    recorded: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = DownloadEvent.objects.filter(attempt_id__in=wanted[start : start + 500])
        recorded.update(value.hex for value in chunk.values_list("attempt_id", flat=True))
    return _first_of_each(attempts, set(wanted) - recorded)


def _first_of_each(attempts: Sequence, ids: set[str]) -> list:
    """The attempts whose id is in ``ids``, each id once (the first line that carries it); those without an id."""
    seen: set[str] = set()
    chosen = []
    for attempt in attempts:
        attempt_id = attempt.attempt_id
        if not attempt_id:
            chosen.append(attempt)
        elif attempt_id in ids and attempt_id not in seen:
            seen.add(attempt_id)
            chosen.append(attempt)
    return chosen


def _links_count(attempts: Sequence, existing: set[int]) -> None:
    """Add the batch's uncapped downloads to their links' counts and move their last fetch, one statement for
    the whole batch (on PostgreSQL; the rows were locked by :func:`_links_lock`)."""
    counts: dict[int, int] = {}
    last_fetched: dict[int, datetime] = {}
    for attempt in attempts:
        if attempt.link_id in existing and attempt.served:
            link_id = attempt.link_id
            last = last_fetched.get(link_id)
            if last is None or attempt.at > last:
                last_fetched[link_id] = attempt.at
            if attempt.count_pending:
                counts[link_id] = counts.get(link_id, 0) + 1
    if not last_fetched:
        return
    ids = sorted(last_fetched)
    if len(ids) == 1 or connection.vendor != "postgresql":
        for link_id in ids:
            DownloadLink.objects.filter(pk=link_id).update(
                download_count=F("download_count") + counts.get(link_id, 0),
                last_fetched_at=last_fetched[link_id],
            )
        return
    table = connection.ops.quote_name(DownloadLink._meta.db_table)
    with connection.cursor() as cursor:
        # The arrays as literals built here: psycopg adapts a list element by element in Python, which cost more
        # than the UPDATE. Integers and ISO times hold nothing an array literal would need quoted.
        cursor.execute(
            f"UPDATE {table} AS link SET download_count = link.download_count + batch.added, "
            "last_fetched_at = batch.at "
            "FROM unnest(%s::bigint[], %s::integer[], %s::timestamptz[]) AS batch (id, added, at) "
            "WHERE link.id = batch.id",
            [
                _array_literal(ids),
                _array_literal(counts.get(link_id, 0) for link_id in ids),
                _array_literal(last_fetched[link_id].isoformat() for link_id in ids),
            ],
        )


def _array_literal(values) -> str:
    return "{" + ",".join(map(str, values)) + "}"
