"""POST + X-HTTP-Method-Override (or ?method=) acts as PUT/PATCH/DELETE; on GET it is ignored (GET stays safe)."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from hub.models import Heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.hub.api.resource_urls")]


@pytest.fixture
def beat(db) -> Heartbeat:
    return Heartbeat.objects.create(
        name="boiler", beat_at=datetime(2026, 11, 28, 7, 0, tzinfo=UTC), interval_seconds=60
    )


@pytest.fixture
def api(client, staff_user):
    client.force_login(staff_user)  # staff holds hub.send_commands, which DELETE on the test resource needs
    return client


def test_post_with_the_override_header_is_a_patch(api, beat):
    response = api.post(
        "/v1/beats/boiler",
        data={"interval_seconds": 5},
        content_type="application/json",
        headers={"X-HTTP-Method-Override": "PATCH"},
    )
    assert response.status_code == 200, response.content
    beat.refresh_from_db()
    assert beat.interval_seconds == 5


def test_post_with_method_put_in_the_query_is_a_put(api, beat):
    response = api.post(
        "/v1/beats/boiler?method=put",
        data={"name": "boiler", "beat_at": "2026-11-28T08:00:00.000Z", "interval_seconds": 7},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    beat.refresh_from_db()
    assert (beat.interval_seconds, beat.beat_at.hour) == (7, 8)


@pytest.mark.parametrize("how", ["header", "query"])
def test_post_overridden_to_delete_deletes(api, beat, how):
    if how == "header":
        response = api.post(
            "/v1/beats/boiler", content_type="application/json", headers={"X-HTTP-Method-Override": "delete"}
        )
    else:
        response = api.post("/v1/beats/boiler?method=DELETE", content_type="application/json")
    assert response.status_code == 204
    assert not Heartbeat.objects.filter(name="boiler").exists()


@pytest.mark.parametrize("method", ["get", "head", "options"])
def test_the_override_header_is_ignored_on_safe_methods(api, beat, method):
    response = getattr(api, method)("/v1/beats/boiler", headers={"X-HTTP-Method-Override": "DELETE"})
    assert response.status_code == 200
    assert Heartbeat.objects.filter(name="boiler").exists()


def test_method_delete_in_the_query_is_ignored_on_get(api, beat):
    response = api.get("/v1/beats/boiler?method=delete")
    assert response.status_code == 200
    assert response.json()["name"] == "boiler"
    assert Heartbeat.objects.filter(name="boiler").exists()


def test_the_override_is_ignored_on_other_methods_than_post(api, beat):
    response = api.put(
        "/v1/beats/boiler",
        data={"name": "boiler", "beat_at": "2026-11-28T09:00:00.000Z", "interval_seconds": 9},
        content_type="application/json",
        headers={"X-HTTP-Method-Override": "DELETE"},
    )
    assert response.status_code == 200
    assert Heartbeat.objects.get(name="boiler").interval_seconds == 9


@pytest.mark.parametrize("override", ["GET", "TRACE", "CONNECT", "FROB"])
def test_a_post_cannot_be_overridden_to_anything_but_put_patch_delete(api, beat, override):
    response = api.post(
        "/v1/beats/boiler", content_type="application/json", headers={"X-HTTP-Method-Override": override}
    )
    assert response.status_code == 400
    assert response.json()["more_info"].endswith("#bad-request")
    assert override in response.json()["message"]


def test_an_overridden_post_still_needs_the_csrf_token_of_a_session(staff_user, beat):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    response = browser.post(
        "/v1/beats/boiler", content_type="application/json", headers={"X-HTTP-Method-Override": "DELETE"}
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]
    assert Heartbeat.objects.filter(name="boiler").exists()


def test_an_overridden_post_is_checked_as_the_method_it_becomes(client, household_user, beat):
    # DELETE on the test resource needs hub.send_commands, which a household user lacks.
    client.force_login(household_user)
    response = client.post(
        "/v1/beats/boiler", content_type="application/json", headers={"X-HTTP-Method-Override": "DELETE"}
    )
    assert response.status_code == 403
    assert Heartbeat.objects.filter(name="boiler").exists()
