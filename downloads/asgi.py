"""The download path: a lean ASGI app dispatched in ``hub/asgi.py`` before Django, whose request cycle costs far
more than verifying a link (docs/decisions/0001-asgi-server.md#consequences).

It verifies the link, looks up its record and the file in one trip to a thread, and streams the bytes itself
(with Range) or hands them to nginx by ``X-Accel-Redirect``; every attempt goes to the batched audit
(``downloads.audit``). The answers: docs/downloads-links.md#answers; the whole path:
docs/downloads.md#why-it-is-fast-the-download-path-before-django.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import mimetypes
import os
import secrets
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from urllib.parse import quote

from django.db import close_old_connections
from django.db.utils import DatabaseError

from downloads import audit, refusal_page
from downloads.http_conditional import (
    NOT_MODIFIED,
    PRECONDITION_FAILED,
    etag_for,
    http_date_seconds,
    nginx_refuses,
    precondition_status,
)
from downloads.http_range import UNSATISFIABLE, multipart_parts, nginx_range_bytes, parse_ranges
from downloads.models import DownloadEvent
from downloads.selectors import customer_time_zone, link_records
from downloads.signing import (
    InvalidLink,
    KeyRing,
    LegacyConfig,
    UnsafePath,
    VerifiedLink,
    check_relative_path,
    split_link,
    stat_under_real_root,
    verify_link,
)

logger = logging.getLogger(__name__)

# The one answer to anything not authentic: it must not say which check failed.
NOT_AUTHENTIC_BODY = b"Not found\n"
_TEXT = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]
_MAX_HEADER_VALUE = 8192
# A link longer than this is not even split (a real one is far shorter: its path is at most MAX_PATH_LENGTH).
_MAX_LINK_LENGTH = 4096
# What the audit row can hold, from its own fields: longer values are cut, never refused.
_AUDIT_METHOD = DownloadEvent._meta.get_field("method").max_length
_AUDIT_CUSTOMER = DownloadEvent._meta.get_field("customer").max_length
_AUDIT_PATH = DownloadEvent._meta.get_field("path").max_length
_AUDIT_USER_AGENT = DownloadEvent._meta.get_field("user_agent").max_length
_CACHING = [(b"cache-control", b"private, no-transform"), (b"x-content-type-options", b"nosniff")]
# Under X-Accel-Redirect nginx sends the file and writes these itself (from the file and the client's Range).
_NGINX_SETS = frozenset((b"content-length", b"content-range", b"accept-ranges", b"etag", b"last-modified"))


@dataclass(frozen=True)
class DownloadConfig:
    root: str
    prefix: str = "/dl/"
    host: str = ""
    keys: KeyRing | None = None
    legacy: LegacyConfig | None = None
    accel_location: str = ""
    chunk_size: int = 256 * 1024
    # Files up to this size are read in the same thread trip as the lookup (one hop instead of two).
    inline_size: int = 64 * 1024
    # How long after its last request a capped download may be continued by a Range that skips byte 0.
    resume_window: timedelta = timedelta(hours=1)
    # The refusal pages a browser gets: the operator's contact line ("" = none), and the zone their times are
    # shown in for a customer without one of their own (the hub's).
    contact: str = ""
    time_zone: str = "UTC"


def config_from_settings() -> DownloadConfig:
    from django.conf import settings

    from downloads.keys import key_ring
    from downloads.services import legacy_config

    return DownloadConfig(
        root=os.path.realpath(settings.DOWNLOADS_ROOT),
        prefix=settings.DOWNLOADS_PREFIX,
        host=settings.DOWNLOADS_HOST.lower(),
        keys=key_ring(),
        legacy=legacy_config(),
        accel_location=settings.DOWNLOADS_ACCEL_LOCATION.rstrip("/"),
        resume_window=timedelta(seconds=settings.DOWNLOADS_RESUME_WINDOW),
        contact=settings.DOWNLOADS_CONTACT,
        time_zone=settings.HUB_TIME_ZONE,
    )


_UNKNOWN = object()


@dataclass(frozen=True, slots=True)
class _Refusal:
    """An answer that serves no file: status, the audit's outcome, the text body and any headers of its own."""

    status: int
    outcome: str
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


_METHOD_NOT_ALLOWED = _Refusal(405, "method", b"Method not allowed\n", ((b"allow", b"GET, HEAD"),))
_FORBIDDEN = _Refusal(403, "forbidden", b"Forbidden\n")
_NOT_AUTHENTIC = _Refusal(404, "invalid", NOT_AUTHENTIC_BODY)
_EXPIRED = _Refusal(410, "expired", b"Link expired\n")
_REVOKED = _Refusal(410, "revoked", b"Link revoked\n")
_USED_UP = _Refusal(410, "used_up", b"Download limit reached\n")
_FILE_MISSING = _Refusal(404, "missing", b"File not found\n")
_UNSATISFIABLE = _Refusal(416, "unsatisfiable", b"Range not satisfiable\n")
_PRECONDITION_FAILED = _Refusal(412, "precondition_failed", b"Precondition failed\n")
_UNAVAILABLE = _Refusal(503, "error", b"Service unavailable, try again later\n")


@dataclass(slots=True, kw_only=True)
class _Plan:
    """What to answer for an authentic, unexpired link, decided in the worker thread."""

    status: int
    outcome: str
    body: bytes = b""
    link_id: int | None = None
    count_pending: bool = False
    file: str = ""
    size: int = 0
    first: int = 0
    length: int = 0
    headers: list = field(default_factory=list)
    relative: str = ""  # the real file's path under the root (what X-Accel-Redirect names)
    # Several ranges: the multipart/byteranges body as literal bytes and (offset, length) slices of the file.
    parts: list = field(default_factory=list)
    ranges: str = ""  # what the audit's range column says for several ranges
    file_bytes: int = 0  # of the file's bytes, how many the answer carries (without multipart framing)

    @classmethod
    def refused(cls, refusal: _Refusal, link_id: int | None = None, headers: list | None = None) -> _Plan:
        return cls(
            status=refusal.status,
            outcome=refusal.outcome,
            body=refusal.body,
            link_id=link_id,
            headers=list(refusal.headers) if headers is None else headers,
        )


@functools.lru_cache(maxsize=4096)
def _content_type(path: str) -> bytes:
    # mimetypes walks its tables for every call; a busy link asks for the same name again and again.
    return (mimetypes.guess_type(path)[0] or "application/octet-stream").encode("latin-1")


@functools.lru_cache(maxsize=4096)
def content_disposition(path: str) -> bytes:
    """``attachment`` with the file's own name: an ASCII fallback and RFC 5987 ``filename*`` for the rest."""
    # Built for every answer, and a busy link asks for the same name again and again (docs/benchmarks.md).
    name = path.rsplit("/", 1)[-1]
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value.encode("ascii")


class DownloadApp:
    def __init__(
        self,
        config: DownloadConfig,
        *,
        submit: Callable[[audit.Attempt], None] = audit.submit,
        journal: Callable[[audit.Attempt], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.config = config
        self.submit = submit
        # Appends a served attempt to the audit journal; the writer ``submit`` feeds must be the one that
        # empties and replays it (downloads_router pairs the process's own).
        self.journal = journal
        self.clock = clock
        self._executor = executor
        self._host = config.host.encode("latin-1")

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="downloads")
        return self._executor

    def handles(self, scope) -> bool:
        """Every path under the prefix, and every path on the dedicated downloads host."""
        if scope["type"] != "http":
            return False
        if scope["path"].startswith(self.config.prefix):
            return True
        if self._host:
            for name, value in scope["headers"]:
                if name == b"host":
                    return value.split(b":", 1)[0].lower() == self._host
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)  # served on its own (tests, a dedicated downloads process)
            return
        if scope["type"] != "http":
            return
        attempt = audit.Attempt(at=self.clock(), method=scope.get("method", "")[:_AUDIT_METHOD], status=0, outcome="")
        try:
            await self._answer(scope, receive, send, attempt)
        except Exception:
            logger.exception("download failed")
            if attempt.status == 0:
                try:
                    headers = _headers(scope)
                except Exception:
                    headers = {}  # malformed headers: the text answer
                await self._refuse(send, attempt, _UNAVAILABLE, headers)
        finally:
            try:
                self.submit(attempt)
            except Exception:
                logger.exception("download audit: could not queue the attempt")

    async def _answer(self, scope, receive, send, attempt: audit.Attempt) -> None:
        headers = _headers(scope)
        link = self._verified_link(scope, headers, attempt)
        if type(link) is _Refusal:
            # Written out rather than through _refuse: a forged link costs ~9 µs, another coroutine call 0.3.
            attempt.status, attempt.outcome = link.status, link.outcome
            if b"accept" in headers and link.outcome in refusal_page.PAGE_OUTCOMES:
                await self._refuse(send, attempt, link, headers)
            else:
                await _text(send, link.status, link.body, attempt.method, link.headers)
            return
        if link.is_expired(attempt.at):
            await self._refuse(send, attempt, _EXPIRED, headers, link)
            return
        range_header = headers.get(b"range", b"").decode("latin-1") or None
        if_range = headers.get(b"if-range", b"").decode("latin-1") or None
        conditions = _conditions(headers)
        client = (attempt.ip, attempt.user_agent)
        known, record = link_records.peek(link)
        if known and (record is None or not record.capped):
            # The record is fresh in memory and no count must be claimed: no database work is left, only the
            # file's metadata (and a small file's bytes), from the page cache in microseconds. A thread trip
            # would cost more than it saves here; bigger files are still read on threads.
            plan = self._plan(
                link, attempt.method, range_header, if_range, conditions, attempt.at, client, record=record
            )
        else:
            plan = await asyncio.get_running_loop().run_in_executor(
                self.executor, self._plan, link, attempt.method, range_header, if_range, conditions, attempt.at, client
            )
        attempt.status, attempt.outcome, attempt.link_id = plan.status, plan.outcome, plan.link_id
        attempt.count_pending = plan.count_pending
        if plan.status == NOT_MODIFIED:
            # The validators and caching headers a 200 would carry, no body, no Content-Type or -Length (as nginx).
            await send({"type": "http.response.start", "status": plan.status, "headers": plan.headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if plan.status not in (200, 206):
            if b"accept" in headers and plan.outcome in refusal_page.PAGE_OUTCOMES:
                refusal = _Refusal(plan.status, plan.outcome, plan.body, tuple(plan.headers))
                await self._refuse(send, attempt, refusal, headers, link)
            else:
                await _text(send, plan.status, plan.body, attempt.method, plan.headers)
            return
        attempt.range = _audit_range(plan)
        if self.journal is not None and not self._journaled(attempt, plan):
            attempt.bytes_sent = 0
            await self._refuse(send, attempt, _UNAVAILABLE, headers, link)
            return
        if self.config.accel_location:
            await self._hand_to_nginx(send, plan, attempt)
        else:
            await self._send_file(receive, send, plan, attempt)

    def _verified_link(self, scope, headers, attempt: audit.Attempt) -> VerifiedLink | _Refusal:
        """The authentic link the request names (it may be expired), or why not; fills in the attempt's request
        fields."""
        attempt.ip = self._client_ip(scope, headers)
        attempt.user_agent = headers.get(b"user-agent", b"")[:_AUDIT_USER_AGENT].decode("latin-1")
        path = scope["path"]
        rest = path[len(self.config.prefix) :] if path.startswith(self.config.prefix) else path.lstrip("/")
        parts = split_link(rest) if len(rest) <= _MAX_LINK_LENGTH else None
        if parts is not None:
            attempt.customer, attempt.path = parts.customer[:_AUDIT_CUSTOMER], parts.path[:_AUDIT_PATH]
        if attempt.method not in ("GET", "HEAD"):
            return _METHOD_NOT_ALLOWED
        if parts is None:
            attempt.path = rest[:_AUDIT_PATH]
            return _FORBIDDEN
        try:
            return verify_link(parts, keys=self.config.keys, legacy=self.config.legacy)
        except InvalidLink:
            return _NOT_AUTHENTIC

    async def _refuse(
        self, send, attempt: audit.Attempt, refusal: _Refusal, headers, link: VerifiedLink | None = None
    ) -> None:
        """Answer ``refusal``: its text, or the customer's page when the request prefers HTML (same status)."""
        attempt.status, attempt.outcome = refusal.status, refusal.outcome
        if refusal.outcome not in refusal_page.PAGE_OUTCOMES or not refusal_page.prefers_html(headers.get(b"accept")):
            await _text(send, refusal.status, refusal.body, attempt.method, refusal.headers)
            return
        if refusal.outcome == "invalid":
            link = None  # not authentic: nothing from the request may shape the page, whichever check failed
        zone = None
        if link is not None and refusal_page.shows_expiry(refusal.outcome):
            customer_zone = await asyncio.get_running_loop().run_in_executor(
                self.executor, _customer_time_zone, link.customer
            )
            zone = refusal_page.zone_named(customer_zone, self.config.time_zone)
        body = refusal_page.render(
            refusal.outcome,
            status=refusal.status,
            expires_at=link.expires_at if link is not None else None,
            zone=zone,
            contact=self.config.contact,
        )
        response_headers = [
            *refusal_page.PAGE_HEADERS,
            (b"content-length", str(len(body)).encode("ascii")),
            *refusal.headers,
        ]
        await send({"type": "http.response.start", "status": refusal.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": b"" if attempt.method == "HEAD" else body})

    def _journaled(self, attempt: audit.Attempt, plan: _Plan) -> bool:
        """On disk before any byte goes out: a kill from here on cannot lose this download's audit. The line says
        the whole answer went out, which is what a replay records if the kill comes mid-body. False when the
        journal cannot be written (then nothing is served: no download without its audit)."""
        attempt.bytes_sent = plan.file_bytes if attempt.method == "GET" else 0
        try:
            self.journal(attempt)
        except OSError:
            logger.exception("download audit journal not writable: refusing to serve without an audit")
            return False
        attempt.bytes_sent = 0
        return True

    async def _hand_to_nginx(self, send, plan: _Plan, attempt: audit.Attempt) -> None:
        # nginx sends the bytes and does Range itself; the audit records what it was asked to hand out.
        attempt.accel, attempt.bytes_sent = True, plan.file_bytes if attempt.method == "GET" else 0
        target = f"{self.config.accel_location}/{quote(plan.relative, safe='/')}"
        response_headers = [
            (b"x-accel-redirect", target.encode("ascii")),
            # An empty body nginx can see the end of: it keeps the upstream connection alive (it closes it
            # after a chunked one, which halved the rate here).
            (b"content-length", b"0"),
            *(header for header in plan.headers if header[0] not in _NGINX_SETS),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})

    async def _send_file(self, receive, send, plan: _Plan, attempt: audit.Attempt) -> None:
        await send({"type": "http.response.start", "status": plan.status, "headers": plan.headers})
        if attempt.method == "HEAD" or plan.length == 0:
            await send({"type": "http.response.body", "body": b""})
        elif plan.body or plan.length <= self.config.inline_size:
            await send({"type": "http.response.body", "body": plan.body})
            attempt.bytes_sent = plan.file_bytes
        else:
            attempt.bytes_sent = await self._stream(receive, send, plan)

    def _plan(
        self,
        link: VerifiedLink,
        method: str,
        range_header,
        if_range,
        conditions,
        now: datetime,
        client,
        record=_UNKNOWN,
    ) -> _Plan:
        """The link's record, the file, the preconditions, the Range and the download count (in a worker thread
        unless the record is already known and nothing needs the database). ``conditions`` is what
        :func:`_conditions` found; ``client`` is (address, User-Agent)."""
        if record is _UNKNOWN:
            try:
                record = _record_for(link)
            except UnsafePath:
                return _Plan.refused(_FILE_MISSING)
        link_id = record.id if record else None
        refusal = _record_refusal(link, record, method, range_header)
        if refusal is not None:
            return _Plan.refused(refusal, link_id)
        found = _regular_file(self.config.root, link.path)
        if found is None:
            return _Plan.refused(_FILE_MISSING, link_id)
        real, relative, status = found
        size = status.st_size
        if conditions is not None:
            # Before any count is claimed: a 304 or a 412 hands out nothing, so it never uses up a capped link.
            answer = self._precondition_answer(method, conditions, status, link_id)
            if answer is not None:
                return answer
        wanted, nginx_bytes, etag, last_modified = self._select_ranges(status, range_header, if_range)
        if wanted == UNSATISFIABLE:
            return _Plan.refused(_UNSATISFIABLE, link_id, [(b"content-range", f"bytes */{size}".encode("ascii"))])
        first, last = wanted[0] if wanted else (0, size - 1)
        if wanted and len(wanted) > 1:
            first = min(start for start, _ in wanted)  # the parts come in the client's order; byte 0 may be last
        plan = _Plan(
            status=206 if wanted else 200,
            outcome="partial" if wanted else "served",
            link_id=link_id,
            file=real,
            size=size,
            first=first,
            length=last - first + 1 if size else 0,
            relative=relative,
            file_bytes=_file_bytes(wanted, size, nginx_bytes),
        )
        if method == "GET" and record is not None:  # HEAD never counts
            if not record.capped:
                plan.count_pending = first == 0  # the audit batch counts it
            elif not self._claim(link, record, plan, now=now, client=client):
                return _Plan.refused(_USED_UP, link_id)
        self._finish(plan, link, method, wanted, etag, last_modified)
        return plan

    def _precondition_answer(self, method: str, conditions, status: os.stat_result, link_id) -> _Plan | None:
        """The 304 or 412 the conditional headers call for, else None (RFC 9110 §13.2.2)."""
        if_match, if_none_match, if_modified_since, if_unmodified_since = conditions
        etag, last_modified = etag_for(status.st_mtime, status.st_size), int(status.st_mtime)
        verdict = precondition_status(
            method=method,
            if_match=if_match,
            if_none_match=if_none_match,
            if_modified_since=if_modified_since,
            if_unmodified_since=if_unmodified_since,
            etag=etag,
            last_modified=last_modified,
        )
        if verdict is None and self.config.accel_location:
            # nginx checks again after the X-Accel-Redirect: where it would refuse, refuse here, uncounted.
            refused = nginx_refuses(
                if_match=if_match, if_unmodified_since=if_unmodified_since, etag=etag, last_modified=last_modified
            )
            verdict = PRECONDITION_FAILED if refused else None
        if verdict == NOT_MODIFIED:
            headers = [
                (b"etag", etag.encode("ascii")),
                (b"last-modified", _http_date(status.st_mtime).encode("ascii")),
                *_CACHING,
            ]
            return _Plan(status=NOT_MODIFIED, outcome="not_modified", link_id=link_id, headers=headers)
        if verdict is not None:
            return _Plan.refused(_PRECONDITION_FAILED, link_id)
        return None

    def _select_ranges(self, status: os.stat_result, range_header, if_range) -> tuple:
        """The ranges to send (None for the whole file, or UNSATISFIABLE), how many bytes nginx will send of them
        under X-Accel (else None), and the file's ETag and Last-Modified (empty when nothing reads it)."""
        size = status.st_size
        etag = etag_for(status.st_mtime, size)  # nginx's, so If-Range and If-None-Match work across both
        accel = bool(self.config.accel_location)
        # Under X-Accel nginx writes Last-Modified itself: the date is only formatted when something reads it.
        last_modified = _http_date(status.st_mtime) if not accel else ""
        wanted = parse_ranges(range_header, size) if range_header is not None else None
        # If-Range as nginx checks it: an entity tag (ends in a quote) exactly equal to the ETag, else a date equal
        # to the file's modification time in seconds.
        if if_range is not None and wanted is not None and not _if_range_holds(if_range, etag, status):
            wanted = None  # the file changed since the client's first part: send it all again
        nginx_bytes = None
        if accel and wanted and wanted != UNSATISFIABLE:
            # What nginx will hand out is what counts: it sends overlapping ranges as asked, and the whole file
            # when they add up to more than it or the header is not exactly "bytes=…".
            nginx_bytes = nginx_range_bytes(range_header, size)
            if nginx_bytes is None:
                wanted = None
        return wanted, nginx_bytes, etag, last_modified

    def _claim(self, link: VerifiedLink, record, plan: _Plan, *, now: datetime, client) -> bool:
        """Take a unit of a capped link's cap for this GET, or continue this client's download; False when none is
        left. A GET that includes byte 0 starts a download. A Range that skips byte 0 is a continuation only of
        this client's recent download with bytes left in its budget (twice the file), else it starts one too:
        without that, `bytes=1-` again and again would fetch a capped file for ever."""
        from downloads.services import link_download_resume, link_download_start

        ip, user_agent = client
        counted = dict(record=record, ip=ip, user_agent=user_agent, bytes_planned=plan.file_bytes, now=now)
        if plan.first > 0 and link_download_resume(**counted, file_size=plan.size, window=self.config.resume_window):
            return True
        started = link_download_start(**counted)
        link_records.forget(link)  # its count changed: the next fetch reads it afresh
        return started

    def _finish(self, plan: _Plan, link: VerifiedLink, method: str, wanted, etag: str, last_modified: str) -> None:
        """The served answer's headers, its multipart framing for several ranges, and a small file's bytes."""
        content_type = _content_type(link.path)
        if wanted and len(wanted) > 1:
            # One multipart/byteranges answer (RFC 9110 §14.6), at most 16 parts, framed as nginx frames it; the
            # boundary has nginx's 20 digits, so the answer's length is nginx's too.
            boundary = b"%020d" % secrets.randbelow(10**20)
            plan.parts, plan.length = multipart_parts(
                wanted, size=plan.size, content_type=content_type, boundary=boundary
            )
            plan.ranges = ",".join(f"{first}-{last}" for first, last in wanted) + f"/{plan.size}"
            content_type = b"multipart/byteranges; boundary=" + boundary
        accel = bool(self.config.accel_location)
        plan.headers = [
            (b"content-type", content_type),
            (b"content-length", str(plan.length).encode("ascii")),
            (b"content-disposition", content_disposition(link.path)),
            (b"etag", etag.encode("ascii")),
        ]
        if not wanted:  # nginx says Accept-Ranges on the whole file only, not on a 206
            plan.headers.append((b"accept-ranges", b"bytes"))
        if not accel:  # under X-Accel nginx writes Last-Modified itself
            plan.headers.append((b"last-modified", last_modified.encode("ascii")))
        plan.headers += _CACHING
        if wanted and not plan.parts:
            plan.headers.append(
                (b"content-range", f"bytes {plan.first}-{plan.first + plan.length - 1}/{plan.size}".encode("ascii"))
            )
        if method == "GET" and 0 < plan.length <= self.config.inline_size and not accel:
            # A bare descriptor and pread: a buffered file object cost more to make than the read itself.
            fd = os.open(plan.file, os.O_RDONLY)
            try:
                plan.body = b"".join(_read_parts(fd, plan.parts or [(plan.first, plan.length)]))
            finally:
                os.close(fd)

    async def _stream(self, receive, send, plan: _Plan) -> int:
        """Send the answer's file slices (and a multipart answer's framing) a chunk at a time; stop early if the
        client goes. Returns how many of the file's bytes went out."""
        loop = asyncio.get_running_loop()
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    return

        watcher = asyncio.ensure_future(watch_disconnect())
        sent = 0
        fd = await loop.run_in_executor(self.executor, os.open, plan.file, os.O_RDONLY)
        try:
            shrank = False
            for part in plan.parts or [(plan.first, plan.length)]:
                if disconnected.is_set() or shrank:
                    break
                if isinstance(part, bytes):
                    await send({"type": "http.response.body", "body": part, "more_body": True})
                    continue
                offset, remaining = part
                while remaining > 0 and not disconnected.is_set():
                    chunk = await loop.run_in_executor(
                        self.executor, os.pread, fd, min(self.config.chunk_size, remaining), offset
                    )
                    if not chunk:
                        shrank = True  # the file shrank under us; the client sees a short body, never foreign bytes
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    sent += len(chunk)
                    offset += len(chunk)
                    remaining -= len(chunk)
            if not disconnected.is_set():
                await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()
            os.close(fd)
        return sent

    def _client_ip(self, scope, headers) -> str | None:
        # The server's own record of the peer, never a header: behind nginx, uvicorn has already put the address
        # nginx saw here, trusting X-Forwarded-For from nginx's address only (an X-Real-IP could come from anyone).
        client = scope.get("client")
        return client[0] if client else None


def _if_range_holds(if_range: str, etag: str, status: os.stat_result) -> bool:
    if if_range.endswith('"'):
        return if_range == etag
    return http_date_seconds(if_range) == int(status.st_mtime)


def _conditions(headers) -> tuple | None:
    """(If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since), or None when the request has none (most
    don't: four dictionary misses is all they cost)."""
    found = (
        headers.get(b"if-match"),
        headers.get(b"if-none-match"),
        headers.get(b"if-modified-since"),
        headers.get(b"if-unmodified-since"),
    )
    if found == (None, None, None, None):
        return None
    return tuple(None if value is None else value.decode("latin-1") for value in found)


def _record_for(link: VerifiedLink):
    """The link's record (None for an unrecorded legacy link); :class:`UnsafePath` for a path no record can name."""
    # Before the database: no record can name such a path, and PostgreSQL refuses a NUL in a query.
    check_relative_path(link.path)
    try:
        return link_records.record_for(link)
    except DatabaseError:
        close_old_connections()  # a dropped connection is replaced on the next try
        return link_records.record_for(link)


def _record_refusal(link: VerifiedLink, record, method: str, range_header: str | None) -> _Refusal | None:
    """Why the link's record allows no answer (deleted, revoked, used up), if it does not."""
    if record is None:
        # Every hub link is recorded when issued: no record means an admin deleted it.
        return _REVOKED if link.format == "hub" else None
    if record.revoked:
        return _REVOKED
    if record.used_up and (method != "GET" or range_header is None):
        # Only a Range GET may still be served: as the continuation of the download that took the last unit.
        return _USED_UP
    return None


def _regular_file(root: str, path: str) -> tuple[str, str, os.stat_result] | None:
    """(real path, path under the root, stat) of the regular file ``path`` names under ``root``, else None."""
    try:
        real, relative, status = stat_under_real_root(root, path)
    except (UnsafePath, OSError):
        return None
    return (real, relative, status) if stat.S_ISREG(status.st_mode) else None


def _file_bytes(wanted, size: int, nginx_bytes: int | None) -> int:
    """Of the file's bytes, how many the answer carries: what nginx will send, the ranges', or the whole file."""
    if nginx_bytes is not None:
        return nginx_bytes
    return sum(last - first + 1 for first, last in wanted) if wanted else size


def _audit_range(plan: _Plan) -> str:
    """The range column of a served answer's audit row: empty for the whole file."""
    if plan.ranges:
        return plan.ranges
    if plan.first or plan.length != plan.size:
        return f"{plan.first}-{plan.first + plan.length - 1}/{plan.size}"
    return ""


def _read_parts(fd: int, parts) -> list[bytes]:
    """A small answer's body: literal multipart framing as it is, file slices read from descriptor ``fd``."""
    pieces = []
    for part in parts:
        if isinstance(part, bytes):
            pieces.append(part)
            continue
        offset, length = part
        while length > 0:
            chunk = os.pread(fd, length, offset)
            if not chunk:
                break  # the file shrank under us: a short body, never foreign bytes
            pieces.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
    return pieces


@functools.lru_cache(maxsize=1024)
def _http_date(mtime: float) -> str:
    """Last-Modified for a file's modification time; a busy file asks for the same one again and again."""
    return formatdate(mtime, usegmt=True)


async def _answer_lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _headers(scope) -> dict[bytes, bytes]:
    """Request headers by lower-case name (the first of repeated ones), over-long values cut."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.lower(), value[:_MAX_HEADER_VALUE])
    return found


def _customer_time_zone(slug: str) -> str:
    """The customer's own zone for a refusal page ("" when unknown, or when the database cannot say)."""
    try:
        return customer_time_zone(slug)
    except DatabaseError:
        close_old_connections()
        return ""


async def _text(send, status: int, body: bytes, method: str, extra=()) -> None:
    headers = [*_TEXT, (b"content-length", str(len(body)).encode("ascii")), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def downloads_router(fallback, app: DownloadApp | None = None):
    """An ASGI app sending download requests to ``app`` (built from settings) and everything else to ``fallback``."""
    app = app or DownloadApp(config_from_settings(), journal=audit.journal_for_settings())

    async def route(scope, receive, send) -> None:
        if app.handles(scope):
            await app(scope, receive, send)
        else:
            await fallback(scope, receive, send)

    route.download_app = app
    return route
