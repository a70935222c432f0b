"""Whatever a client sends in the query or the body, /v1/ answers JSON and never a 500."""

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.hub.api.resource_urls"), pytest.mark.slow]

_PARAMS = ("limit", "offset", "since", "until", "fields", "q", "interval", "suppress_response_code", "method")
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_query = st.dictionaries(st.sampled_from(_PARAMS), st.one_of(_text, st.integers().map(str)), max_size=4)


def _assert_json_answer(response):
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        body = response.json()
        assert body["message"]
        assert "/v1/docs/errors#" in body["more_info"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=_query, path=st.sampled_from(["/v1/beats", "/v1/beats/count", "/v1/search", "/v1/users/me"]))
def test_any_query_gets_a_json_answer(household_user, query, path):
    client = Client(raise_request_exception=False)
    client.force_login(household_user)
    _assert_json_answer(client.get(path, query))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.floats(allow_nan=False) | _text,
            lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
            max_leaves=12,
        ).map(lambda value: __import__("json").dumps(value).encode()),
    ),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=latin-1", "application/json; charset=bogus", "text/plain"]
    ),
)
def test_any_body_gets_a_json_answer(household_user, body, content_type):
    client = Client(raise_request_exception=False)
    client.force_login(household_user)
    # generic(): the bytes go out as they are, whatever charset the header claims.
    _assert_json_answer(client.generic("POST", "/v1/beats", data=body, content_type=content_type))


_header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    accept=st.one_of(_header_text, st.sampled_from(["text/html", "application/json", "*/*", "application/json;q=x"])),
    override=_header_text,
    authorization=st.one_of(_header_text, _header_text.map(lambda token: f"Bearer {token}")),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
)
def test_any_headers_get_a_json_answer(accept, override, authorization, method):
    client = Client(raise_request_exception=False)
    response = client.generic(
        method,
        "/v1/beats",
        data=b"{}",
        content_type="application/json",
        headers={"Accept": accept, "X-HTTP-Method-Override": override, "Authorization": authorization},
    )
    _assert_json_answer(response)
