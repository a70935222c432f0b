"""Search: inside a resource with ?q= beside its filters; across resources at /v1/search?q=."""

from datetime import UTC, datetime

import pytest

from hub.api.search import register_search_provider, unregister_search_provider
from hub.models import Heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.hub.api.resource_urls")]


@pytest.fixture
def beats(db):
    moment = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    for name in ("boiler-kitchen", "boiler-attic", "radiator-hall"):
        Heartbeat.objects.create(name=name, beat_at=moment, interval_seconds=30 if "attic" in name else 60)


@pytest.fixture
def beats_provider():
    def search(user, query, limit):
        found = Heartbeat.objects.filter(name__icontains=query).order_by("name")[:limit]
        return [{"id": beat.name, "title": beat.name, "url": f"/v1/beats/{beat.name}"} for beat in found]

    register_search_provider("beats", scope="events:read", search=search)
    yield
    unregister_search_provider("beats")


def test_q_searches_inside_a_resource_with_its_other_filters_and_its_count(client, household_user, beats):
    client.force_login(household_user)
    names = [item["name"] for item in client.get("/v1/beats?q=boiler").json()["results"]]
    assert sorted(names) == ["boiler-attic", "boiler-kitchen"]
    assert client.get("/v1/beats/count?q=boiler&interval=60").json() == {"count": 1}


def test_search_across_resources_returns_typed_hits_with_urls(client, staff_user, beats, beats_provider):
    client.force_login(staff_user)
    body = client.get("/v1/search?q=bo").json()
    assert body["q"] == "bo"
    # Apps register their own providers too (e.g. heating's nodes): this test checks its own are there.
    assert {"users", "beats"} <= set(body["searched"])
    beat_hits = [hit for hit in body["results"] if hit["type"] == "beats"]
    assert [hit["id"] for hit in beat_hits] == ["boiler-attic", "boiler-kitchen"]
    assert beat_hits[0]["url"] == "http://testserver/v1/beats/boiler-attic"
    user_hits = [hit for hit in body["results"] if hit["type"] == "users"]
    assert [hit["title"] for hit in user_hits] == ["bob"]


def test_search_shows_only_what_the_caller_may_read(client, household_user, staff_user, bearer, beats, beats_provider):
    client.force_login(household_user)
    searched = client.get("/v1/search?q=b").json()["searched"]
    assert "beats" in searched
    assert "users" not in searched  # users are staff only
    client.logout()
    only_users = client.get("/v1/search?q=b", headers=bearer(staff_user, "users:read")).json()
    assert only_users["searched"] == ["users"]  # a token reaches only what its scopes grant
    assert {hit["type"] for hit in only_users["results"]} == {"users"}
    umbrella = client.get("/v1/search?q=b", headers=bearer(staff_user, "read")).json()
    assert {"users", "beats"} <= set(umbrella["searched"])


def test_search_limits_hits_per_kind(client, household_user, beats, beats_provider):
    client.force_login(household_user)
    hits = client.get("/v1/search?q=o&limit=1").json()["results"]
    assert [hit["type"] for hit in hits].count("beats") == 1
    assert all([hit["type"] for hit in hits].count(kind) <= 1 for kind in {hit["type"] for hit in hits})
    response = client.get("/v1/search?q=o&limit=1000")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["limit"]


@pytest.mark.parametrize("query", ["", "q=", "q=%20%20"])
def test_search_without_words_is_400_naming_q(client, household_user, query):
    client.force_login(household_user)
    response = client.get(f"/v1/search?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["q"]


def test_search_needs_a_signed_in_caller(client):
    assert client.get("/v1/search?q=boiler").status_code == 401
