"""Every error under /v1/ answers {"message", "more_info"} with the right status, never an HTML page."""

import json
import logging
from urllib.parse import urlsplit

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.hub.api.resource_urls")]


def assert_error_body(response, status: int, anchor: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert isinstance(body["message"], str)
    assert body["message"]
    assert urlsplit(body["more_info"]).fragment == anchor
    return body


def test_an_unknown_path_under_v1_is_a_json_404(client, household_user):
    client.force_login(household_user)
    body = assert_error_body(client.get("/v1/no-such-resource"), 404, "not-found")
    assert "/v1/no-such-resource" in body["message"]


def test_an_unknown_path_is_json_even_when_the_client_asks_for_html(client):
    response = client.get("/v1/nothing/here", headers={"Accept": "text/html"})
    assert_error_body(response, 404, "not-found")


def test_the_bare_prefix_leads_to_the_api_root(client):
    response = client.get("/v1")
    assert response.status_code == 301
    assert response["Location"] == "/v1/"


def test_an_unknown_id_is_a_json_404(client, household_user):
    client.force_login(household_user)
    assert_error_body(client.get("/v1/beats/missing"), 404, "not-found")


def test_a_method_the_resource_refuses_is_a_json_405_with_allow(client, household_user):
    client.force_login(household_user)
    response = client.delete("/v1/users/me")
    body = assert_error_body(response, 405, "method-not-allowed")
    assert "DELETE" in body["message"]
    assert "GET" in response["Allow"]


def test_django_level_405_outside_drf_is_json_too(client):
    # /v1/docs/errors is a plain Django view accepting only GET/HEAD.
    response = client.post("/v1/docs/errors", data="{}", content_type="application/json")
    assert_error_body(response, 405, "method-not-allowed")
    assert "GET" in response["Allow"]


def test_an_unhandled_exception_in_an_api_view_is_a_json_500_and_is_logged(household_user, caplog):
    client = Client(raise_request_exception=False)
    client.force_login(household_user)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/v1/broken")
    body = assert_error_body(response, 500, "server-error")
    assert "a bug" not in body["message"]  # no internals leak to the client
    assert any("a bug in an API view" in str(record.exc_info[1]) for record in caplog.records if record.exc_info)


def test_an_unhandled_exception_in_a_plain_django_view_under_v1_is_a_json_500():
    client = Client(raise_request_exception=False)
    assert_error_body(client.get("/v1/broken-plain"), 500, "server-error")


def test_any_html_error_page_under_v1_becomes_the_json_body(client):
    body = assert_error_body(client.get("/v1/teapot"), 418, "bad-request")
    assert "teapot" not in body["message"]


def test_a_host_the_hub_does_not_serve_is_a_json_400_with_a_relative_more_info(client):
    response = client.get("/v1/users/me", headers={"Host": "evil.example"})
    assert response.status_code == 400
    body = response.json()
    assert body["more_info"] == "/v1/docs/errors#bad-request"


def test_pages_outside_v1_keep_their_html_errors(client):
    response = client.get("/no-such-page-outside-the-api")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "text/csv"])
def test_an_accept_other_than_json_is_406_with_the_json_body(client, household_user, accept):
    client.force_login(household_user)
    body = assert_error_body(client.get("/v1/users/me", headers={"Accept": accept}), 406, "not-acceptable")
    assert body["message"]


@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/*", "text/html, application/json;q=0.5"])
def test_json_is_served_for_any_accept_that_allows_it(client, household_user, accept):
    client.force_login(household_user)
    assert client.get("/v1/users/me", headers={"Accept": accept}).status_code == 200


def test_a_malformed_json_body_is_400_malformed_body(client, household_user):
    client.force_login(household_user)
    response = client.post("/v1/beats", data='{"name": "boiler",', content_type="application/json")
    body = assert_error_body(response, 400, "malformed-body")
    assert "JSON" in body["message"]


def test_a_json_body_nested_too_deeply_is_400_not_500(client, household_user):
    client.force_login(household_user)
    response = client.post("/v1/beats", data="[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert_error_body(response, 400, "malformed-body")


def test_a_body_over_the_upload_limit_is_413(client, household_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(household_user)
    body = '{"name": "boiler", "details": {"note": "' + "x" * 2000 + '"}}'
    response = client.post("/v1/beats", data=body, content_type="application/json")
    assert "1000" in assert_error_body(response, 413, "too-large")["message"]


def test_nan_is_not_json(client, household_user):
    client.force_login(household_user)
    body = '{"name": "boiler", "beat_at": "2026-11-28T07:30:00.000Z", "interval_seconds": NaN}'
    response = client.post("/v1/beats", data=body, content_type="application/json")
    assert_error_body(response, 400, "malformed-body")


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("text/plain", "name=boiler"),
        ("application/x-www-form-urlencoded", "name=boiler&interval_seconds=5"),
        ("application/xml", "<beat><name>boiler</name></beat>"),
    ],
)
def test_a_body_that_is_not_json_is_415(client, household_user, content_type, payload):
    client.force_login(household_user)
    response = client.post("/v1/beats", data=payload, content_type=content_type)
    body = assert_error_body(response, 415, "unsupported-media-type")
    assert content_type in body["message"]


def test_validation_errors_name_every_field(client, household_user):
    client.force_login(household_user)
    response = client.post(
        "/v1/beats", data={"name": "Not A Valid Id!", "beat_at": "yesterday"}, content_type="application/json"
    )
    body = assert_error_body(response, 400, "invalid-input")
    assert set(body["fields"]) == {"name", "beat_at"}
    assert "name" in body["message"]
    assert "beat_at" in body["message"]
    assert "2026-11-28T07:30:00.000Z" in body["fields"]["beat_at"][0]


def test_nested_and_whole_input_errors_are_named_too(client, household_user):
    client.force_login(household_user)
    response = client.post(
        "/v1/beats",
        data={"name": "boiler", "beat_at": "2026-11-28T07:30:00.000Z", "interval_seconds": 0, "details": {"strict": 1}},
        content_type="application/json",
    )
    body = assert_error_body(response, 400, "invalid-input")
    assert body["fields"] == {"non_field_errors": ["A strict beat needs an interval."]}
    assert body["message"] == "Invalid input — A strict beat needs an interval."


def test_more_info_points_at_a_page_the_hub_serves_with_that_section(client):
    body = client.get("/v1/nowhere").json()
    more_info = urlsplit(body["more_info"])
    assert more_info.scheme == "http"
    assert more_info.netloc == "testserver"
    page = client.get(more_info.path)
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert f'id="{more_info.fragment}"' in page.content.decode()


def test_the_errors_page_documents_every_kind_the_api_answers(client):
    from hub.api.errors import ERROR_KINDS

    html = client.get("/v1/docs/errors").content.decode()
    for kind in ERROR_KINDS:
        assert f'id="{kind.anchor}"' in html


def test_suppress_response_code_answers_200_and_carries_the_real_code(client, household_user):
    response = client.get("/v1/no-such-thing?suppress_response_code=true")
    assert response.status_code == 200
    body = response.json()
    assert body["response_code"] == 404
    assert body["more_info"].endswith("#not-found")


def test_suppress_response_code_on_a_success_keeps_the_body(client, household_user):
    client.force_login(household_user)
    response = client.get("/v1/users/me?suppress_response_code=true")
    assert response.status_code == 200
    assert response.json()["response_code"] == 200
    assert response.json()["username"] == "alice"


def test_suppress_response_code_covers_auth_errors_and_empty_bodies(client, household_user):
    response = client.get("/v1/users/me?suppress_response_code=true")
    assert response.status_code == 200
    assert response.json()["response_code"] == 401
    client.force_login(household_user)
    client.post(
        "/v1/beats", data={"name": "boiler", "beat_at": "2026-11-28T07:30:00.000Z"}, content_type="application/json"
    )
    household_user.user_permissions.add(*_send_commands())
    response = client.delete("/v1/beats/boiler?suppress_response_code=true")
    assert response.status_code == 200
    assert json.loads(response.content) == {"response_code": 204}


def test_without_suppress_the_status_is_the_real_one(client):
    assert client.get("/v1/no-such-thing?suppress_response_code=false").status_code == 404


def _send_commands():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(codename="send_commands", content_type__app_label="hub")


def test_nested_field_errors_are_named_by_their_path():
    from rest_framework.exceptions import ValidationError

    from hub.api.errors import api_exception_handler

    detail = {"rooms": [{}, {"setpoint": ["Too hot."]}], "node": {"address": ["Unknown."]}}
    response = api_exception_handler(ValidationError(detail), {})
    assert response.data["fields"] == {"rooms.1.setpoint": ["Too hot."], "node.address": ["Unknown."]}
    assert "rooms.1.setpoint: Too hot." in response.data["message"]
