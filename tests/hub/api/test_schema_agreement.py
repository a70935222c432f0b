"""What /v1/ answers agrees with what /v1/schema says (issue 12, section 3), each point as a client sees it."""

from __future__ import annotations

import re

import jsonschema
import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from downloads.models import DownloadLink
from downloads.services import customer_create
from heating.models import Node, Reading

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def schema(client):
    return client.get("/v1/schema").json()


def _parameter(schema: dict, path: str, name: str, method: str = "get") -> dict:
    return next(p for p in schema["paths"][path][method]["parameters"] if p["name"] == name)


def _resolved(schema: dict, component: str) -> dict:
    return schema["components"]["schemas"][component]


def test_a_duplicate_customer_id_is_a_400_naming_id(staff_api):
    customer_create(slug="acme", name="ACME")
    response = staff_api.post("/v1/customers", {"id": "acme", "name": "Again"}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "id" in response.json()["fields"]


@pytest.mark.parametrize("value", ["AAA", "", "xml"])
def test_an_unusable_format_is_a_400_naming_it(staff_api, value):
    response = staff_api.get("/v1/readings/export", {"format": value})
    assert response.status_code == 400, response.content
    assert "format" in response.json()["fields"]


def test_the_export_format_the_schema_lists_is_what_the_server_takes(staff_api, schema):
    node = Node.objects.create(address=7, name="hall")
    Reading.objects.create(
        node=node, endpoint_id="7.11.0", name="t", value="20.5", unit="C", recorded_at=timezone.now()
    )
    formats = _parameter(schema, "/v1/readings/export", "format")["schema"]["enum"]
    assert set(formats) == {"csv", "json"}
    for value in formats:
        response = staff_api.get("/v1/readings/export", {"format": value})
        assert response.status_code == 200, (value, response.status_code)
        assert response["Content-Type"].startswith("text/csv")  # the export is CSV whichever format is named
        assert b"".join(response.streaming_content).startswith(b"time,node")


def test_a_user_without_an_email_validates_against_the_schema(client, schema):
    user = User.objects.create_user("carol", password="x")  # no e-mail address: ""
    client.force_login(user)
    body = client.get("/v1/users/me").json()
    assert body["email"] == ""
    email = _resolved(schema, "CurrentUser")["properties"]["email"]
    jsonschema.validate(body["email"], email, format_checker=jsonschema.FormatChecker())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("not an address", email, format_checker=jsonschema.FormatChecker())


def test_a_link_whose_creator_is_gone_validates_against_the_schema(staff_api, schema, downloads_root):
    customer = customer_create(slug="acme", name="ACME")
    created = staff_api.post(
        "/v1/download-links",
        {"customer": "acme", "path": "dir1/example1.txt", "expires_at": "2099-01-01T10:00:00.000Z"},
        content_type="application/json",
    ).json()
    DownloadLink.objects.filter(pk=created["id"]).update(created_by=None)
    assert customer.slug == "acme"
    body = staff_api.get(f"/v1/download-links/{created['id']}").json()
    assert body["created_by"] is None
    assert _resolved(schema, "DownloadLink")["properties"]["created_by"].get("nullable") is True


def _query_schema_accepts(parameter: dict, value: str) -> bool:
    try:
        jsonschema.validate(value, parameter["schema"])
    except jsonschema.ValidationError:
        return False
    return True


def test_the_schema_refuses_the_q_values_the_server_refuses(staff_api, schema):
    for path in ("/v1/customers", "/v1/search"):
        q = _parameter(schema, path, "q")
        assert _query_schema_accepts(q, "acme")
        for refused in ("x" * 201, "a\x00b"):
            assert not _query_schema_accepts(q, refused), (path, refused[:10])
            assert staff_api.get(path, {"q": refused}).status_code == 400
    # The cross-resource search needs words: blank is refused by the server, and so by the schema.
    assert not _query_schema_accepts(_parameter(schema, "/v1/search", "q"), "  ")
    assert staff_api.get("/v1/search", {"q": "  "}).status_code == 400


def test_the_schema_lists_the_field_names_fields_may_hold(staff_api, schema):
    fields = _parameter(schema, "/v1/customers", "fields")
    assert fields["schema"]["type"] == "array"
    assert set(fields["schema"]["items"]["enum"]) == {"id", "name", "contact", "notes", "created_at"}
    assert (fields["style"], fields["explode"]) == ("form", False)  # ?fields=id,name
    assert fields["schema"]["minItems"] == 1
    assert staff_api.get("/v1/customers", {"fields": "id,name"}).status_code == 200
    assert staff_api.get("/v1/customers", {"fields": "id,secret"}).status_code == 400
    # The export writes every column whatever ?fields= says: the schema does not offer it there.
    names = {p["name"] for p in schema["paths"]["/v1/readings/export"]["get"]["parameters"]}
    assert "fields" not in names


def test_the_oauth_scheme_names_the_device_flow_scripts_use(schema):
    oauth = schema["components"]["securitySchemes"]["oauth2"]
    device = oauth["x-device-authorization"]
    assert device["grantType"] == "urn:ietf:params:oauth:grant-type:device_code"
    assert device["deviceAuthorizationUrl"].endswith("/o/device-authorization/")
    assert device["tokenUrl"].endswith("/o/token/")
    assert {"read", "heating:write"} <= set(device["scopes"])
    assert re.search(r"device", oauth["description"], re.IGNORECASE)
    # Still a valid OpenAPI 3.0 oauth2 scheme: only the flows 3.0 knows, each complete.
    assert set(oauth["flows"]) <= {"implicit", "password", "clientCredentials", "authorizationCode"}


def test_the_schema_is_a_valid_openapi_document(schema):
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)  # drf-spectacular's copy of the OpenAPI 3.0 JSON Schema


def test_a_partial_answer_validates_against_the_schema(staff_api, schema):
    customer_create(slug="acme", name="ACME")
    body = staff_api.get("/v1/customers/acme", {"fields": "contact"}).json()
    assert body == {"contact": ""}
    customer = _resolved(schema, "Customer")
    jsonschema.validate(body, customer)  # was: "id", "name", "created_at" required
    assert "unless ?fields=" in customer["description"]


def test_an_unacknowledged_alert_validates_against_the_schema(schema):
    # acknowledged_by is null until someone acknowledges the alert (a read-only relation on a nullable key).
    assert _resolved(schema, "Alert")["properties"]["acknowledged_by"]["nullable"] is True


def test_ending_a_boost_is_documented_as_the_200_it_answers(schema):
    responses = schema["paths"]["/v1/rooms/{id}/boost"]["delete"]["responses"]
    assert "200" in responses
    assert "204" not in responses
