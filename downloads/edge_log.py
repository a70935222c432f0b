"""nginx's edge access log (``log_format edge_downloads escape=json``) read into download attempts. Pure: no Django.

nginx writes one JSON object per line, every value a string, for each download it served on its own (the edge,
docs/downloads.md "Edge audit")::

    {"t":"$msec","id":"$request_id","ip":"$remote_addr","m":"$request_method","uri":"$request_uri",
     "s":"$status","b":"$body_bytes_sent","range":"$http_range","ua":"$http_user_agent","link":"$edge_link"}

:func:`parse_line` turns one line into an :class:`EdgeAttempt` (what the audit stores, named as the hub's own
download path names it) or an :class:`Unparseable` saying why not; :func:`complete_lines` splits a read buffer into
the lines nginx has finished writing (a last line without its newline is not finished yet: it is kept, not judged).
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from downloads.signing import split_link

#: The keys every line carries (the contract with deploy/nginx.conf's ``edge_downloads`` format).
KEYS = ("t", "id", "ip", "m", "uri", "s", "b", "range", "ua", "link")

#: The audit's outcome for each status nginx may answer at the edge: the names the hub's own path gives them
#: (downloads/asgi.py), so a report by outcome does not care who served the file.
OUTCOMES = {
    200: "served",
    206: "partial",
    304: "not_modified",
    403: "forbidden",
    404: "missing",
    405: "method",
    410: "expired",
    412: "precondition_failed",
    416: "unsatisfiable",
}
#: nginx's own code for a client that closed the connection before the answer started.
CLIENT_CLOSED = 499

_REQUEST_ID = re.compile(r"[0-9a-f]{32}\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_MSEC = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?\Z")
# How much of a bad line the report keeps: enough to find it in the file, never a whole megabyte.
_SAMPLE = 200
# Column sizes of the audit row (downloads.models.DownloadEvent): longer values are cut, as on the hub's path.
_METHOD, _CUSTOMER, _USER_AGENT, _RANGE = 8, 200, 512, 100


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__
class EdgeAttempt:
    """One download nginx served at the edge, as the audit records it."""

    at: datetime
    attempt_id: str  # nginx's $request_id: 32 hex digits, unique in the audit
    method: str
    status: int
    outcome: str
    customer: str
    path: str
    ip: str | None
    user_agent: str
    range: str
    bytes_sent: int
    link_id: int | None
    # True when the link's download count takes this one (the hub's rule for uncapped links: a GET whose
    # answer starts at byte 0, i.e. the whole file or a Range that includes its first byte).
    count_pending: bool

    @property
    def served(self) -> bool:
        return self.status in (200, 206)


@dataclass(frozen=True, slots=True)
class Unparseable:
    """A line that is not an ``edge_downloads`` record: why, and its start (for the log)."""

    reason: str
    sample: str


def complete_lines(buffer: bytes) -> tuple[list[bytes], int]:
    """The finished lines at the start of ``buffer`` (without their newlines) and how many bytes they take.

    What follows the last newline is a line nginx is still writing (or a reader caught mid-write): the caller
    keeps it and reads again later.
    """
    end = buffer.rfind(b"\n") + 1
    if not end:
        return [], 0
    return buffer[: end - 1].split(b"\n"), end


def parse_line(line: bytes, *, prefix: str = "/dl/") -> EdgeAttempt | Unparseable:
    """One log line (without its newline) → the attempt it records, or :class:`Unparseable` with the reason.

    ``prefix`` is the downloads location (``DOWNLOADS_PREFIX``): the link is what follows it in the URI.
    """
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return _bad(line, f"not JSON ({exc})")
    if not isinstance(record, dict):
        return _bad(line, "not a JSON object")
    for key in KEYS:  # one pass in the usual case; the reasons are worked out only for a bad line
        if type(record.get(key)) is not str:
            missing = [key for key in KEYS if key not in record]
            if missing:
                return _bad(line, f"missing key(s) {', '.join(missing)}")
            return _bad(line, f"the value of {key} is not a string")
    try:
        return _attempt(record, prefix)
    except ValueError as exc:
        return _bad(line, str(exc))


def _attempt(record: dict[str, str], prefix: str) -> EdgeAttempt:
    attempt_id = record["id"].lower()
    if not _REQUEST_ID.match(attempt_id):
        raise ValueError(f"id {record['id'][:40]!r} is not 32 hex digits")
    status, bytes_sent = _number("s", record["s"]), _number("b", record["b"])
    if not 100 <= status <= 999:
        raise ValueError(f"status {status} is not an HTTP status")
    link = _value(record["link"])
    if link and not _DIGITS.match(link):
        raise ValueError(f"link {link[:40]!r} is not a link id")
    method = record["m"][:_METHOD]
    requested = _value(record["range"])
    customer, path = _link_fields(record["uri"], prefix)
    return EdgeAttempt(
        at=_time(record["t"]),
        attempt_id=attempt_id,
        method=method,
        status=status,
        outcome=outcome_for(status),
        customer=customer[:_CUSTOMER],
        path=path,
        ip=_address(record["ip"]),
        user_agent=_value(record["ua"])[:_USER_AGENT],
        range=_audit_range(requested) if status == 206 else "",
        bytes_sent=bytes_sent,
        link_id=int(link) if link else None,
        count_pending=method == "GET" and (status == 200 or (status == 206 and _starts_at_zero(requested))),
    )


def outcome_for(status: int) -> str:
    """The audit's outcome for an edge answer with ``status``."""
    outcome = OUTCOMES.get(status)
    if outcome is not None:
        return outcome
    if status == CLIENT_CLOSED:
        return "client_closed"
    return "error" if status >= 500 else f"status_{status}"


def _bad(line: bytes, reason: str) -> Unparseable:
    return Unparseable(reason, line[:_SAMPLE].decode("utf-8", "replace"))


def _value(text: str) -> str:
    # nginx logs an unset variable as "" under escape=json and as "-" otherwise: both mean "none".
    return "" if text == "-" else text


def _number(key: str, text: str) -> int:
    if not _DIGITS.match(text) or len(text) > 18:
        raise ValueError(f"{key} {text[:40]!r} is not a number")
    return int(text)


def _time(text: str) -> datetime:
    """``$msec`` (seconds since the epoch with milliseconds) as an aware UTC time, to the microsecond given."""
    match = _MSEC.match(text)
    if match is None:
        raise ValueError(f"t {text[:40]!r} is not a time in seconds")
    seconds, fraction = match.groups()
    try:
        at = datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"t {text[:40]!r} is out of range") from None
    return at.replace(microsecond=int((fraction or "0").ljust(6, "0")))


def _address(text: str) -> str | None:
    """The client's address, or None when nginx logged something else (a unix socket peer): the row is kept.

    Checked with ``inet_pton`` (C) rather than ``ipaddress``, which cost a tenth of a line's parse; nginx writes
    addresses in their usual form already, and PostgreSQL's inet stores them in its own.
    """
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        socket.inet_pton(family, text)
    except (OSError, ValueError):
        return None
    return text


def _link_fields(uri: str, prefix: str) -> tuple[str, str]:
    """The customer and file the request named, from ``$request_uri`` (still percent-encoded, with its query)."""
    path = unquote(uri.split("?", 1)[0], errors="replace")
    rest = path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")
    parts = split_link(rest)
    if parts is None:
        return "", rest
    return parts.customer, parts.path


def _audit_range(requested: str) -> str:
    """The range column for a 206: the ranges asked for (nginx logs the request's header, not Content-Range)."""
    unit, _, ranges = requested.partition("=")
    return (ranges if unit.strip().lower() == "bytes" else requested).strip()[:_RANGE]


def _starts_at_zero(requested: str) -> bool:
    """Whether a Range answered with 206 includes the file's first byte: one of its ranges starts at 0.

    A suffix range (``-500``: the last 500 bytes) is taken as not starting at 0; the log does not say the file's
    size, and the hub counts such a fetch of a file longer than the suffix the same way.
    """
    _, _, ranges = requested.partition("=")
    for spec in ranges.split(","):
        first = spec.strip().partition("-")[0].strip()
        if first.isdigit() and int(first) == 0:
            return True
    return False
