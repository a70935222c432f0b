"""The hub's own pages: sign-in, the dashboard shell, staff-only sections, sign-out, password rules, throttling."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client, override_settings

from tests.support.html import assets_of, nav_labels
from tests.support.users import USER_PASSWORD

STRONG_PASSWORD = USER_PASSWORD  # household_user's (tests/conftest.py); the other users here share it
SECTION_PATHS = ["/devices/", "/live/", "/downloads/", "/events/"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_group_user():
    user = User.objects.create_user("bob", password=STRONG_PASSWORD)
    user.groups.add(Group.objects.get(name="staff"))
    return user


def sign_in(client, username, password=STRONG_PASSWORD):
    return client.post("/login/", {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/", *SECTION_PATHS, "/password/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_the_login_page_is_bootstrap_styled_and_fits_a_phone(client):
    response = client.get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in assets_of(html)
    assert 'class="form-control"' in html
    # Nothing but the login page for an anonymous visitor: no section links in the navigation bar.
    assert nav_labels(html) == []


def test_signing_in_through_the_form_lands_on_the_dashboard(client, household_user):
    response = sign_in(client, "alice")
    assert response.status_code == 302
    assert response["Location"] == "/"
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert '<h1 class="h3 mb-0">Home</h1>' in dashboard.content.decode()  # the house: a tile per room


def test_a_wrong_password_is_refused_with_the_form_again(client, household_user):
    response = sign_in(client, "alice", "not-the-password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get("/").status_code == 302


def test_household_members_see_home_and_live_but_not_the_staff_sections(client, household_user):
    client.force_login(household_user)
    html = client.get("/").content.decode()
    assert nav_labels(html) == ["Home", "Live"]
    assert "Open Downloads" not in html
    assert client.get("/devices/").status_code == 403
    assert client.get("/live/").status_code == 200


@pytest.mark.parametrize("path", ["/devices/", "/downloads/", "/events/"])
def test_staff_sections_answer_403_to_household_members(client, household_user, path):
    client.force_login(household_user)
    response = client.get(path)
    assert response.status_code == 403
    assert "for the hub's staff" in response.content.decode()


def test_the_staff_group_sees_every_section(client, staff_group_user):
    client.force_login(staff_group_user)
    assert nav_labels(client.get("/").content.decode()) == ["Home", "Live", "Devices", "Downloads", "Events"]
    assert client.get("/downloads/").status_code == 200
    assert client.get("/events/").status_code == 200


def test_the_is_staff_flag_alone_counts_as_staff_and_links_the_admin(client):
    admin_user = User.objects.create_user("carol", password=STRONG_PASSWORD, is_staff=True)
    client.force_login(admin_user)
    html = client.get("/").content.decode()
    assert nav_labels(html) == ["Home", "Live", "Devices", "Downloads", "Events"]
    assert 'href="/admin/"' in html


@pytest.mark.parametrize("path", SECTION_PATHS)
def test_every_section_marks_itself_active_in_the_navigation(client, staff_group_user, path):
    client.force_login(staff_group_user)
    html = client.get(path).content.decode()
    assert re.search(r'<a class="nav-link active" aria-current="page"\s+href="' + re.escape(path) + '"', html)


def test_sign_out_is_post_only_and_ends_the_session(client, household_user):
    client.force_login(household_user)
    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_a_signed_in_user_opening_the_login_page_goes_to_the_dashboard(client, household_user):
    client.force_login(household_user)
    response = client.get("/login/")
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize(
    ("new_password", "message"),
    [("Zq8!k", "This password is too short"), ("password123", "This password is too common")],
)
def test_the_password_change_page_refuses_short_and_common_passwords(client, household_user, new_password, message):
    client.force_login(household_user)
    response = client.post(
        "/password/",
        {"old_password": STRONG_PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    # Shown as Bootstrap's invalid field with its feedback under it.
    assert html.count('class="form-control is-invalid"') == 1
    assert f'<div class="invalid-feedback">{message}' in html.replace("&#x27;", "'")
    household_user.refresh_from_db()
    assert household_user.check_password(STRONG_PASSWORD)


def test_the_password_change_page_accepts_a_strong_password(client, household_user):
    client.force_login(household_user)
    new_password = "granite-lantern-meadow-7"
    response = client.post(
        "/password/",
        {"old_password": STRONG_PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )
    assert response.status_code == 302
    assert response["Location"] == "/password/done/"
    household_user.refresh_from_db()
    assert household_user.check_password(new_password)


@override_settings(AXES_FAILURE_LIMIT=3)
def test_after_the_failure_limit_even_the_right_password_is_refused_with_a_429_page(client, household_user):
    for _ in range(2):
        assert sign_in(client, "alice", "guess").status_code == 200
    # The failure that reaches the limit is already answered with the lockout page ...
    assert sign_in(client, "alice", "guess").status_code == 429
    # ... and the next attempt is refused even with the right password.
    response = sign_in(client, "alice")
    html = response.content.decode()
    assert response.status_code == 429
    assert "Too many failed sign-ins" in html
    assert "After 3 failed attempts" in html
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in assets_of(html)
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_the_default_failure_limit_is_five(client, household_user, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    for _ in range(4):
        assert sign_in(client, "alice", "guess").status_code == 200
    assert sign_in(client, "alice", "guess").status_code == 429
    assert sign_in(client, "alice").status_code == 429


def test_failures_below_the_limit_do_not_lock_the_right_password_out(client, household_user):
    for _ in range(4):
        sign_in(client, "alice", "guess")
    response = sign_in(client, "alice")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_an_unknown_address_gets_the_hub_styled_404(client, household_user):
    client.force_login(household_user)
    with override_settings(DEBUG=False):
        response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "The hub has no page at this address" in response.content.decode()


def test_a_form_without_its_csrf_token_gets_the_hub_styled_try_again_page(household_user):
    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "alice", "password": STRONG_PASSWORD})
    html = response.content.decode()
    assert response.status_code == 403
    assert "Please try again" in html
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in assets_of(html)
