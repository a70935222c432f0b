"""Every query parameter of every list and search endpoint of the real /v1/, fed anything: never a 500.

The endpoints and their parameters are read from the API's own OpenAPI schema, so a new list, filter or
path id is fuzzed without this file changing. Values are arbitrary unicode (digits of other scripts, NUL,
huge numbers, dates at the ends of the calendar) and raw percent-encoded bytes (invalid UTF-8, encoded
surrogates). A bad value is a 400 in the API's error shape, or is taken as text.
"""

# ruff: noqa: RUF001  (the digits of other scripts that look like ASCII ones are this file's point)
from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from downloads.models import Customer, DownloadEvent, DownloadLink
from heating.models import Node, Reading
from messaging.models import Event

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# The characters str.isdigit() or int() take that are not ASCII digits, and numbers no column holds.
TRICKY = [
    "²",
    "①",
    "١٢٣",
    "１２",
    "𝟗",
    "Ⅻ",
    "٣.٥",
    "9" * 5000,
    "9" * 30,
    "-" + "9" * 30,
    "18446744073709551616",
    "-1",
    "0x10",
    "1e3",
    " 7",
    "\x00",
    "a\x00b",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.999999Z",
    "２０２６-01-01T00:00:00Z",
    '"',
    "'",
    '"a b',
    ",,,",
    "\\",
    "%",
    "_",
    "x" * 60000,
]
# Sent as they are, percent-encoded bytes in the query: bad UTF-8, an encoded surrogate, an overlong NUL.
RAW = ["%FF", "%ED%A0%80", "%C0%80", "%F4%90%80%80", "%E2%91", "%00", "%25", "+%2B+"]

_unicode = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_numberish = st.text(st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=12)
_value = st.one_of(
    st.sampled_from(TRICKY).map(quote),
    st.sampled_from(RAW),
    _unicode.map(quote),
    _numberish.map(quote),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
)


@functools.cache
def api_gets() -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """(path template, path parameters, query parameters) of every GET of the API's schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or path.startswith(("/v1/schema", "/v1/docs")):
            continue
        parameters = get.get("parameters", [])
        in_path = tuple(p["name"] for p in parameters if p["in"] == "path")
        in_query = tuple(p["name"] for p in parameters if p["in"] == "query")
        found.append((path, in_path, (*in_query, "format", "suppress_response_code")))
    return tuple(found)


def test_the_schema_lists_the_endpoints_and_parameters_the_fuzzing_covers():
    gets = {path: query for path, _, query in api_gets()}
    assert {"/v1/search", "/v1/nodes", "/v1/readings", "/v1/events", "/v1/download-links"} <= set(gets)
    assert {"q", "limit"} <= set(gets["/v1/search"])
    assert {"q", "limit", "offset", "since", "until", "fields", "location", "reachable"} <= set(gets["/v1/nodes"])
    assert {"link", "customer", "status"} <= set(gets["/v1/download-events"])


@pytest.fixture
def staff_client(staff_user):
    """A staff session: it may read every endpoint, so each request reaches its parsers and the database."""
    node = Node.objects.create(address=5, name="Boiler", location="hall", last_heard=timezone.now())
    Reading.objects.create(
        node=node, endpoint_id="5.11.0", name="Temperature", value="21.5", unit="C", recorded_at=timezone.now()
    )
    customer = Customer.objects.create(slug="acme", name="ACME")
    link = DownloadLink.objects.create(
        customer=customer, path="dir1/example1.txt", expires_at=datetime(2099, 1, 1, tzinfo=UTC)
    )
    DownloadEvent.objects.create(
        link=link, customer="acme", path="dir1/example1.txt", status=200, outcome="served", at=timezone.now()
    )
    Event.objects.create(id=uuid.uuid4(), type="heating.reading", source="serial", occurred_at=timezone.now(), data={})
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    return client


def get_whole(client: Client, url: str):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def assert_not_a_server_error(response, body: bytes, url: str) -> None:
    assert response.status_code < 500, (url[:200], body[:300])
    if response.status_code >= 400:
        error = response.json()
        assert error["message"], url[:200]
        assert "/v1/docs/errors#" in error["more_info"]


@pytest.mark.parametrize("q", ["²", "①", "١٢٣", "9" * 200, "0x" + "9" * 40, "Ⅻ"])
def test_search_takes_other_digits_and_huge_numbers_as_text(staff_client, q):
    response = staff_client.get("/v1/search", {"q": q})
    assert response.status_code == 200, response.content[:300]
    assert response.json()["results"] == []


def test_search_still_finds_a_node_by_its_decimal_address(staff_client):
    found = staff_client.get("/v1/search", {"q": "5"}).json()["results"]
    assert [hit["title"] for hit in found if hit["type"] == "nodes"] == ["Boiler (hall)"]


@pytest.mark.parametrize("path", ["/v1/search", "/v1/nodes"])
@pytest.mark.parametrize(("q", "limit"), [("x" * 60000, 1000), ("9" * 5000, 1000), ("9" * 201, 200)])
def test_an_overlong_search_is_a_400_naming_q(staff_client, path, q, limit):
    response = staff_client.get(path, {"q": q})
    assert response.status_code == 400
    [problem] = response.json()["fields"]["q"]
    assert f"at most {limit} characters" in problem.lower()


@pytest.mark.parametrize("path", ["/v1/search", "/v1/nodes", "/v1/readings/export", "/v1/events"])
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(staff_client, path):
    response, _ = get_whole(staff_client, f"{path}?q=boiler&node=a%00b")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["node"]


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "٢٠٢٦-01-01T00:00:00Z"])
def test_a_time_past_the_calendar_once_in_utc_is_a_400_naming_it(staff_client, since):
    response = staff_client.get("/v1/nodes", {"since": since})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["since"]


@pytest.mark.parametrize("link", ["9" * 30, "-" + "9" * 30, "9" * 5000, "²", "١", "1.0", " 1"])
def test_a_number_filter_past_its_column_or_in_other_digits_is_a_400_naming_it(staff_client, link):
    response = staff_client.get("/v1/download-events", {"link": link})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["link"]
    assert len(response.json()["message"]) < 200  # a 5,000-digit value is not echoed back whole


def test_a_number_filter_still_filters(staff_client):
    link = DownloadLink.objects.get()
    assert staff_client.get("/v1/download-events", {"link": str(link.pk)}).json()["total"] == 1
    assert staff_client.get("/v1/download-events", {"link": str(link.pk + 1)}).json()["total"] == 0


# One of each kind of value that broke a parser once; swept over every parameter of every endpoint.
SWEPT = [
    *map(quote, ["²", "١٢", "9" * 5000, "-" + "9" * 30, "\x00", "9999-12-31T23:59:59-01:00", "x" * 1000, '"a b']),
    "%FF",
    "%ED%A0%80",
]


def test_every_query_parameter_of_every_endpoint_takes_the_values_that_broke_one(staff_client):
    for template, in_path, in_query in api_gets():
        path = re.sub(r"\{[^}]+\}", "5", template)
        for name in in_query:
            for value in SWEPT:
                url = f"{path}?{name}={value}"
                assert_not_a_server_error(*get_whole(staff_client, url), url)
        for value in SWEPT if in_path else ():
            url = re.sub(r"\{[^}]+\}", value, template)
            assert_not_a_server_error(*get_whole(staff_client, url), url)


_fuzz = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@_fuzz
@given(data=st.data())
def test_no_query_on_any_list_or_search_endpoint_is_a_500(staff_client, data):
    path, in_path, in_query = data.draw(st.sampled_from(api_gets()), label="endpoint")
    for name in in_path:
        path = path.replace("{" + name + "}", data.draw(st.sampled_from(["5", "acme", "1", "x"]), label=name))
    names = data.draw(st.lists(st.sampled_from(in_query), min_size=1, max_size=3, unique=True), label="params")
    query = "&".join(f"{name}={data.draw(_value, label=name)}" for name in names)
    url = f"{path}?{query}"
    assert_not_a_server_error(*get_whole(staff_client, url), url)


@_fuzz
@given(data=st.data(), value=_value)
def test_no_id_in_a_url_is_a_500(staff_client, data, value):
    path = data.draw(st.sampled_from([path for path, in_path, _ in api_gets() if in_path]), label="endpoint")
    url = re.sub(r"\{[^}]+\}", value.replace("%2F", "x").replace("/", "x"), path)
    assert_not_a_server_error(*get_whole(staff_client, url), url)
