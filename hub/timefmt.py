"""The hub's one date format: ISO 8601 in UTC with milliseconds, as JavaScript's ``Date.toJSON()`` writes it.

Pure (no Django): the REST layer, the event envelope and the protocol code all use it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_utc(moment: datetime) -> str:
    """``2026-11-28T07:30:00.000Z``; a naive datetime is refused rather than guessed."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no zone; the hub only writes UTC times")
    utc = moment.astimezone(UTC)
    # The year by hand: strftime's %Y does not pad years before 1000 on glibc ("1-01-01T…", which parse_utc refuses).
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> datetime:
    """Read an ISO 8601 time that carries its zone (``Z`` or ``±hh:mm``); return it in UTC.

    Raises ValueError for anything else, including a time without a zone.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("expected an ISO 8601 time such as 2026-11-28T07:30:00.000Z")
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2026-11-28T07:30:00.000Z") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no zone; add Z for UTC")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-01:00 is a valid ISO time whose UTC lies past year 9999
        raise ValueError(f"{text!r} is outside the years 1 to 9999 once in UTC") from None
