"""The edge access log's lines (nginx's ``edge_downloads`` JSON format) read into attempts, without Django."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from downloads.edge_log import KEYS, EdgeAttempt, Unparseable, complete_lines, outcome_for, parse_line

REQUEST_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def line(**values: str) -> bytes:
    """One line as nginx writes it (every value a string), with ``values`` replacing the defaults."""
    record = {
        "t": "1733420000.123",
        "id": REQUEST_ID,
        "ip": "198.51.100.7",
        "m": "GET",
        "uri": "/dl/3kq9sig/acme/20261231T2359Z/reports/q4%20final.pdf?utm=x",
        "s": "200",
        "b": "4096",
        "range": "",
        "ua": "curl/8.5.0",
        "link": "42",
    }
    record.update(values)
    return json.dumps(record, separators=(",", ":")).encode()


def test_a_served_download_becomes_the_attempt_the_hub_would_audit():
    attempt = parse_line(line())
    assert attempt == EdgeAttempt(
        at=datetime(2024, 12, 5, 17, 33, 20, 123000, tzinfo=UTC),
        attempt_id=REQUEST_ID,
        method="GET",
        status=200,
        outcome="served",
        customer="acme",
        path="reports/q4 final.pdf",  # percent-decoded, without the query, as the hub's path sees it
        ip="198.51.100.7",
        user_agent="curl/8.5.0",
        range="",
        bytes_sent=4096,
        link_id=42,
        count_pending=True,
    )
    assert attempt.served


def test_a_range_from_byte_0_counts_and_a_continuation_does_not():
    first = parse_line(line(s="206", range="bytes=0-1023", b="1024"))
    later = parse_line(line(s="206", range="bytes=1024-", b="3072"))
    several = parse_line(line(s="206", range="bytes=500-600, 0-99", b="300"))
    suffix = parse_line(line(s="206", range="bytes=-500", b="500"))
    assert (first.outcome, first.range, first.count_pending) == ("partial", "0-1023", True)
    assert (later.outcome, later.range, later.count_pending) == ("partial", "1024-", False)
    assert several.count_pending is True
    assert suffix.count_pending is False


def test_head_and_refusals_never_count():
    assert parse_line(line(m="HEAD", b="0")).count_pending is False
    for status, outcome in [
        (304, "not_modified"),
        (404, "missing"),
        (416, "unsatisfiable"),
        (412, "precondition_failed"),
    ]:
        attempt = parse_line(line(s=str(status), b="0"))
        assert (attempt.outcome, attempt.served, attempt.count_pending) == (outcome, False, False)


def test_outcomes_outside_the_hubs_names_are_still_named():
    assert outcome_for(499) == "client_closed"
    assert outcome_for(502) == "error"
    assert outcome_for(418) == "status_418"


def test_nginx_empty_and_dash_values_mean_none():
    attempt = parse_line(line(link="", ua="-", range="-", ip="unix:"))
    assert (attempt.link_id, attempt.user_agent, attempt.range, attempt.ip) == (None, "", "", None)


def test_a_uri_that_is_not_a_link_keeps_its_path():
    attempt = parse_line(line(uri="/dl/just-one-part"))
    assert (attempt.customer, attempt.path) == ("", "just-one-part")


def test_the_request_id_is_taken_in_lower_case():
    assert parse_line(line(id=REQUEST_ID.upper())).attempt_id == REQUEST_ID


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"garbage", "not JSON"),
        (b'{"t":"1733420000.123",', "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not JSON"),
        (json.dumps({key: "1" for key in KEYS if key != "id"}).encode(), "missing key(s) id"),
        (line(s="two hundred"), "s 'two hundred' is not a number"),
        (line(s="-200"), "is not a number"),
        (line(s="99"), "not an HTTP status"),
        (line(b="1e3"), "b '1e3' is not a number"),
        (line(t="yesterday"), "t 'yesterday' is not a time"),
        (line(id="not-a-request-id"), "is not 32 hex digits"),
        (line(link="42; DROP"), "is not a link id"),
    ],
)
def test_bad_lines_are_unparseable_with_the_reason(bad, reason):
    result = parse_line(bad)
    assert isinstance(result, Unparseable)
    assert reason in result.reason
    assert len(result.sample) <= 200


def test_a_value_that_is_not_a_string_is_unparseable():
    record = json.loads(line())
    record["s"] = 200
    assert isinstance(parse_line(json.dumps(record).encode()), Unparseable)


def test_only_lines_with_their_newline_are_complete():
    first, second = line(), line(id="1" * 32)
    lines, used = complete_lines(first + b"\n" + second + b"\n" + b'{"t":"17334')
    assert lines == [first, second]
    assert used == len(first) + len(second) + 2
    assert complete_lines(b'{"t":"17334') == ([], 0)  # still being written: not judged yet
    assert complete_lines(b"") == ([], 0)
