"""The hub's one date format (hub.timefmt): what it writes, parse_utc reads back."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hub.timefmt import format_utc, parse_utc


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 28, 7, 30, tzinfo=UTC), "2026-11-28T07:30:00.000Z"),
        (datetime(2026, 11, 28, 8, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1))), "2026-11-28T07:30:00.123Z"),
        # Years before 1000 keep four digits (strftime's %Y wrote "1-01-01T…" on glibc).
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
        (datetime(999, 12, 31, 23, 59, tzinfo=UTC), "0999-12-31T23:59:00.000Z"),
    ],
)
def test_format_utc_writes_what_parse_utc_reads_back(moment, text):
    assert format_utc(moment) == text
    assert parse_utc(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
