"""The dashboard's Live page: every signed-in user gets it (with the JS client), nobody else."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def household_client(client_as, household_user):
    return client_as(household_user)


def test_a_household_member_gets_the_live_page_with_the_push_client(household_client):
    response = household_client.get("/live/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "js/push.js" in html
    assert "js/live.js" in html
    assert 'id="live-filter"' in html
    active = html.split('aria-current="page"')[1].split("</a>")[0]
    assert 'href="/live/">Live' in active, "the Live section is marked active in the menu"


def test_a_topic_in_the_address_fills_in_the_pattern(household_client):
    response = household_client.get("/live/", {"topic": "/home/#"})
    assert 'value="/home/#"' in response.content.decode()


def test_the_pattern_from_the_address_is_escaped(household_client):
    response = household_client.get("/live/", {"topic": '"><script>alert(1)</script>'})
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/live/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
