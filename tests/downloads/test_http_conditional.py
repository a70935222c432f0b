"""Conditional requests (RFC 9110 §13) on their own: which of 304, 412 or "go on" each set of headers gets."""

from __future__ import annotations

import pytest

from downloads.http_conditional import etag_for, http_date_seconds, nginx_refuses, precondition_status

ETAG = '"6b0cc900-100000"'
MODIFIED = 1_796_000_000  # the file's Last-Modified, in seconds
AT = "Mon, 30 Nov 2026 00:53:20 GMT"  # exactly MODIFIED
EARLIER = "Mon, 30 Nov 2026 00:53:19 GMT"
LATER = "Mon, 30 Nov 2026 00:53:21 GMT"


def test_the_etag_is_nginxs_modification_seconds_and_size_in_hex():
    assert etag_for(1_796_000_000.987, 1_048_576) == '"6b0cc900-100000"'


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (AT, MODIFIED),
        ("Monday, 30-Nov-26 00:53:20 GMT", MODIFIED),  # RFC 850
        ("Mon Nov 30 00:53:20 2026", MODIFIED),  # asctime
        ("Mon, 30 Nov 2026 01:53:20 +0100", MODIFIED),
        ("yesterday", None),
        ("", None),
        ("Mon, 31 Feb 2026 99:00:00 GMT", None),
        ("x" * 1000, None),
    ],
)
def test_http_dates(value, seconds):
    assert http_date_seconds(value) == seconds


# (method, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since) -> 304, 412 or None (serve it)
CASES = [
    # If-None-Match: exact, weak, in a list, "*", another tag
    (("GET", None, ETAG, None, None), 304),
    (("HEAD", None, ETAG, None, None), 304),
    (("GET", None, "W/" + ETAG, None, None), 304),  # weak comparison
    (("GET", None, '"a", ' + ETAG + ' ,"b"', None, None), 304),
    (("GET", None, "*", None, None), 304),
    (("GET", None, '"other"', None, None), None),
    (("GET", None, ETAG[:-1], None, None), None),
    # If-Modified-Since: not later than the file -> 304; earlier or unreadable -> serve
    (("GET", None, None, AT, None), 304),
    (("GET", None, None, LATER, None), 304),
    (("GET", None, None, EARLIER, None), None),
    (("GET", None, None, "not a date", None), None),
    # If-None-Match decides alone: If-Modified-Since is not looked at beside it (§13.2.2 step 4)
    (("GET", None, '"other"', AT, None), None),
    (("GET", None, ETAG, EARLIER, None), 304),
    # If-Match: strong comparison only
    (("GET", ETAG, None, None, None), None),
    (("GET", '"a", ' + ETAG, None, None, None), None),
    (("GET", "*", None, None, None), None),
    (("GET", '"other"', None, None, None), 412),
    (("GET", "W/" + ETAG, None, None, None), 412),
    # If-Unmodified-Since: 412 when the file is newer; an invalid date is ignored
    (("GET", None, None, None, AT), None),
    (("GET", None, None, None, LATER), None),
    (("GET", None, None, None, EARLIER), 412),
    (("GET", None, None, None, "not a date"), None),
    # If-Match first, and If-Unmodified-Since only without it (§13.2.2 steps 1-2)
    (("GET", ETAG, None, None, EARLIER), None),
    (("GET", '"other"', None, None, LATER), 412),
    # 412 before 304
    (("GET", '"other"', ETAG, None, None), 412),
    (("GET", None, ETAG, None, EARLIER), 412),
    (("GET", ETAG, ETAG, None, None), 304),
]


@pytest.mark.parametrize(("request_headers", "expected"), CASES)
def test_precondition_status(request_headers, expected):
    method, if_match, if_none_match, if_modified_since, if_unmodified_since = request_headers
    status = precondition_status(
        method=method,
        if_match=if_match,
        if_none_match=if_none_match,
        if_modified_since=if_modified_since,
        if_unmodified_since=if_unmodified_since,
        etag=ETAG,
        last_modified=MODIFIED,
    )
    assert status == expected


@pytest.mark.parametrize(
    ("if_match", "if_unmodified_since", "refuses"),
    [
        (None, None, False),
        (ETAG, None, False),
        ('"other"', None, True),
        (None, AT, False),
        (None, EARLIER, True),
        (ETAG, EARLIER, True),  # nginx checks the date beside a matching If-Match (the RFC would not)
        (None, "not a date", True),  # and takes a date it cannot read as older than the file
    ],
)
def test_when_nginx_answers_412_itself(if_match, if_unmodified_since, refuses):
    assert (
        nginx_refuses(if_match=if_match, if_unmodified_since=if_unmodified_since, etag=ETAG, last_modified=MODIFIED)
        is refuses
    )
