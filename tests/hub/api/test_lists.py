"""Lists: limit/offset pagination, ?fields=, /count with the list's filters, since/until, dates, ids, .json."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework import serializers

from hub.api.pagination import MAX_LIMIT
from hub.models import Heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.hub.api.resource_urls")]

START = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture
def beats(db):
    """Five beats a minute apart from 07:00:00.000Z, the third with a sub-millisecond part."""
    made = []
    for minute in range(5):
        moment = START + timedelta(minutes=minute)
        if minute == 2:
            moment += timedelta(microseconds=123456)
        made.append(
            Heartbeat.objects.create(name=f"beat-{minute}", beat_at=moment, interval_seconds=30 if minute % 2 else 60)
        )
    return made


@pytest.fixture
def api(client, household_user):
    client.force_login(household_user)
    return client


def test_a_list_is_paginated_with_total_and_links(api, beats):
    page = api.get("/v1/beats?limit=2&offset=2").json()
    assert page["total"] == 5
    assert page["limit"] == 2
    assert page["offset"] == 2
    assert [item["name"] for item in page["results"]] == ["beat-2", "beat-3"]
    assert page["next"] == "http://testserver/v1/beats?limit=2&offset=4"
    assert page["previous"] == "http://testserver/v1/beats?limit=2"
    last = api.get(page["next"]).json()
    assert [item["name"] for item in last["results"]] == ["beat-4"]
    assert last["next"] is None


def test_pagination_links_keep_the_filters(api, beats):
    page = api.get("/v1/beats?limit=1&since=2026-11-28T07:01:00.000Z").json()
    assert page["total"] == 4
    assert "since=2026-11-28T07%3A01%3A00.000Z" in page["next"]


@pytest.mark.parametrize("limit", ["-1", "0", "abc", "1.5", "", " 5", str(MAX_LIMIT + 1), "9" * 5000, "1e3"])
def test_a_bad_limit_is_400_naming_the_parameter_and_the_max(api, beats, limit):
    response = api.get("/v1/beats", {"limit": limit})
    assert response.status_code == 400
    body = response.json()
    assert list(body["fields"]) == ["limit"]
    assert str(MAX_LIMIT) in body["message"]
    assert body["more_info"].endswith("#invalid-input")


@pytest.mark.parametrize("offset", ["-1", "x", "99999999999999999999999"])
def test_a_bad_offset_is_400_naming_it(api, beats, offset):
    response = api.get("/v1/beats", {"offset": offset})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["offset"]


def test_the_max_limit_itself_is_accepted(api, beats):
    assert api.get(f"/v1/beats?limit={MAX_LIMIT}").json()["limit"] == MAX_LIMIT


def test_fields_returns_only_those_fields_in_a_list_and_a_detail(api, beats):
    page = api.get("/v1/beats?fields=name,beat_at").json()
    assert all(set(item) == {"name", "beat_at"} for item in page["results"])
    assert set(api.get("/v1/beats/beat-1?fields=interval_seconds").json()) == {"interval_seconds"}


def test_an_unknown_field_is_400_naming_it(api, beats):
    response = api.get("/v1/beats?fields=name,colour")
    assert response.status_code == 400
    body = response.json()
    assert "colour" in body["message"]
    assert list(body["fields"]) == ["fields"]
    assert "colour" in body["fields"]["fields"][0]


def test_an_empty_fields_list_is_400(api, beats):
    assert api.get("/v1/beats?fields=").status_code == 400


def test_count_has_the_same_filters_as_the_list(api, beats):
    assert api.get("/v1/beats/count").json() == {"count": 5}
    query = "since=2026-11-28T07:01:00.000Z&until=2026-11-28T07:03:00.000Z&interval=30"
    assert api.get(f"/v1/beats/count?{query}").json() == {"count": 1}
    listed = api.get(f"/v1/beats?{query}").json()
    assert [item["name"] for item in listed["results"]] == ["beat-1"]
    assert listed["total"] == 1


def test_since_is_inclusive_and_until_exclusive(api, beats):
    page = api.get("/v1/beats?since=2026-11-28T07:01:00.000Z&until=2026-11-28T07:03:00.000Z").json()
    assert [item["name"] for item in page["results"]] == ["beat-1", "beat-2"]


def test_since_accepts_an_offset_and_reads_it_as_utc(api, beats):
    page = api.get("/v1/beats", {"since": "2026-11-28T09:04:00.000+02:00"}).json()
    assert [item["name"] for item in page["results"]] == ["beat-4"]


@pytest.mark.parametrize("param", ["since", "until"])
@pytest.mark.parametrize("value", ["yesterday", "2026-11-28T07:00:00", "2026-13-01T00:00:00Z", ""])
def test_a_bad_date_is_400_naming_the_parameter(api, beats, param, value):
    for path in ("/v1/beats", "/v1/beats/count"):
        response = api.get(path, {param: value})
        assert response.status_code == 400
        body = response.json()
        assert list(body["fields"]) == [param]
        assert param in body["message"]


def test_a_filter_value_the_field_cannot_hold_is_400_naming_it(api, beats):
    response = api.get("/v1/beats?interval=fast")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["interval"]


def test_dates_go_out_as_utc_with_milliseconds_and_z(api, beats):
    items = api.get("/v1/beats").json()["results"]
    assert items[0]["beat_at"] == "2026-11-28T07:00:00.000Z"
    assert items[2]["beat_at"] == "2026-11-28T07:02:00.123Z"


def test_users_me_dates_use_the_same_format(api, household_user):
    body = api.get("/v1/users/me").json()
    assert body["date_joined"].endswith("Z")
    assert datetime.strptime(body["date_joined"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(body["date_joined"]) == len("2026-11-28T07:30:00.000Z")


def test_dates_come_in_as_iso_8601_utc(api):
    response = api.post(
        "/v1/beats",
        data={"name": "boiler", "beat_at": "2026-11-28T07:30:00.250Z", "interval_seconds": 5},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["beat_at"] == "2026-11-28T07:30:00.250Z"
    assert Heartbeat.objects.get(name="boiler").beat_at == datetime(2026, 11, 28, 7, 30, 0, 250000, tzinfo=UTC)


def test_a_date_without_zone_is_refused_rather_than_guessed(api):
    response = api.post(
        "/v1/beats", data={"name": "boiler", "beat_at": "2026-11-28T07:30:00"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["beat_at"]


@pytest.mark.parametrize("word", ["count", "search", "schema", "docs"])
def test_reserved_words_are_never_ids(api, beats, word):
    Heartbeat.objects.create(name=word, beat_at=START)  # even if one slipped into the table
    if word == "count":
        assert api.get(f"/v1/beats/{word}").json() == {"count": 6}
    else:
        assert api.get(f"/v1/beats/{word}").status_code == 404
    response = api.post(
        "/v1/beats", data={"name": word, "beat_at": "2026-11-28T07:30:00.000Z"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["name"]


@pytest.mark.parametrize("bad_id", ["Beat-1", "beat.1", "b" * 65, "beat%201", "bêta"])
def test_ids_outside_the_url_rule_do_not_resolve(api, beats, bad_id):
    Heartbeat.objects.create(name=bad_id, beat_at=START)
    assert api.get(f"/v1/beats/{bad_id}").status_code == 404


def test_ids_up_to_64_characters_of_the_rule_resolve(api):
    name = "a-b_c" + "9" * 59
    Heartbeat.objects.create(name=name, beat_at=START)
    assert api.get(f"/v1/beats/{name}").json()["name"] == name


def test_the_json_suffix_works_on_lists_details_count_and_users_me(api, beats):
    assert api.get("/v1/beats.json").json()["total"] == 5
    assert api.get("/v1/beats/beat-1.json").json()["name"] == "beat-1"
    assert api.get("/v1/beats/count.json").json() == {"count": 5}
    assert api.get("/v1/users/me.json").json()["username"] == "alice"
    # The suffix is for clients that cannot set Accept: it wins over what they send.
    assert api.get("/v1/users/me.json", headers={"Accept": "text/html"}).status_code == 200


def test_another_suffix_is_not_a_format(api, beats):
    assert api.get("/v1/beats/beat-1.xml").status_code == 404
    # ?format= is a query parameter: a value naming no format is invalid input naming it (issue 12).
    response = api.get("/v1/beats/beat-1?format=xml")
    assert response.status_code == 400
    assert "format" in response.json()["fields"]
    assert api.get("/v1/beats/beat-1?format=json", headers={"Accept": "text/html"}).status_code == 200


def test_a_verb_lives_under_the_resource(api, beats):
    response = api.post("/v1/beats/beat-1/silence", content_type="application/json")
    assert response.status_code == 200
    assert response.json()["details"] == {"silenced": True}
    assert api.get("/v1/beats/beat-1/silence").status_code == 405


def test_fields_applies_to_the_views_serializer_not_to_ones_nested_with_its_context(beats):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from hub.api.serializers import HubSerializer
    from tests.hub.api.resource_urls import BeatSerializer, BeatViewSet

    class Nested(HubSerializer):
        other = serializers.CharField(source="name")

    view = BeatViewSet(action="list", format_kwarg=None)
    request = Request(APIRequestFactory().get("/v1/beats?fields=name"))
    view.request = request
    context = {"request": request, "view": view}
    assert BeatSerializer(beats[0], context=context).data == {"name": "beat-0"}
    assert Nested(beats[0], context=context).data == {"other": "beat-0"}
