"""HTTP conditional requests for one file (RFC 9110 §13): pure, no Django.

The file's validators are nginx's, so a client sees the same ones whichever of the hub and nginx answers: the
ETag ``"<mtime seconds hex>-<size hex>"`` (strong) and Last-Modified in whole seconds.

:func:`precondition_status` applies RFC 9110 §13.2.2's order: If-Match, else If-Unmodified-Since; then
If-None-Match, else If-Modified-Since (GET and HEAD only). Under X-Accel-Redirect nginx checks the preconditions
again its own way: :func:`nginx_refuses` says when it would answer 412 where the RFC's order would not, so the
hub can answer that 412 itself instead of counting a download nginx will not send.
"""

from __future__ import annotations

from email.utils import parsedate_tz

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412


def etag_for(mtime: float, size: int) -> str:
    """nginx's ETag for a file: its modification time in whole seconds and its size, both in hex."""
    return f'"{int(mtime):x}-{size:x}"'


def http_date_seconds(value: str) -> int | None:
    """An HTTP-date (IMF-fixdate, RFC 850 or asctime) as seconds since the epoch; None when it is not one."""
    if not value or len(value) > 64:
        return None
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    if year < 100:  # RFC 850's two-digit year (RFC 9110 §5.6.7: 50 and later are the 1900s)
        year += 1900 if year >= 50 else 2000
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    days = _days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second - (parsed[9] or 0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's algorithm: no datetime object, and no error for a day past the month's end.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    """Whether the list of entity tags in ``header`` (or ``*``) names ``etag``. ``weak`` (If-None-Match)
    compares ignoring ``W/``; otherwise (If-Match) a weak tag never matches (RFC 9110 §8.8.3.2)."""
    header = header.strip()
    if header == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if weak and candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def precondition_status(
    *,
    method: str,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
    etag: str,
    last_modified: int,
) -> int | None:
    """412 or 304 when the preconditions say so (RFC 9110 §13.2.2), else None (go on to Range)."""
    if if_match is not None:
        if not etag_matches(if_match, etag, weak=False):
            return PRECONDITION_FAILED
    elif if_unmodified_since is not None:
        date = http_date_seconds(if_unmodified_since)
        if date is not None and last_modified > date:  # an invalid date is ignored (§13.1.4)
            return PRECONDITION_FAILED
    if if_none_match is not None:
        if etag_matches(if_none_match, etag, weak=True):
            return NOT_MODIFIED if method in ("GET", "HEAD") else PRECONDITION_FAILED
    elif if_modified_since is not None and method in ("GET", "HEAD"):
        date = http_date_seconds(if_modified_since)
        if date is not None and last_modified <= date:
            return NOT_MODIFIED
    return None


def nginx_refuses(*, if_match: str | None, if_unmodified_since: str | None, etag: str, last_modified: int) -> bool:
    """Whether nginx (1.22's not-modified filter) answers 412: it checks If-Unmodified-Since even beside an
    If-Match, and takes a date it cannot read as older than any file."""
    if if_unmodified_since is not None:
        date = http_date_seconds(if_unmodified_since)
        if date is None or last_modified > date:
            return True
    return if_match is not None and not etag_matches(if_match, etag, weak=False)
