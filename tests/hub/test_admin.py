"""The Django admin: themed by jazzmin with the hub's name, every project model registered, nothing from a CDN."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.utils import timezone

from hub.admin_site import HubAdminSite
from hub.models import Heartbeat
from tests.support.html import assets_of

pytestmark = pytest.mark.django_db

# A stylesheet that pulls from the internet: @import url(https://…), @import "https://…" or url(https://…).
REMOTE_IN_CSS = re.compile(r"""(@import\s+(url\()?\s*['"]?\s*https?:|url\(\s*['"]?\s*https?:|url\(\s*['"]?\s*//)""")


def project_models():
    """Every model of the project's own apps (those living in the repository, not in site-packages)."""
    root = Path(settings.BASE_DIR).resolve()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(root) and not path.is_relative_to(root / ".venv"):
            yield from config.get_models()


def test_the_default_admin_site_is_the_hubs():
    assert isinstance(admin.site._wrapped if hasattr(admin.site, "_wrapped") else admin.site, HubAdminSite)
    assert admin.site.site_header == "Hub administration"


def test_every_model_of_the_projects_apps_is_registered_in_the_admin():
    models = list(project_models())
    labels = {model._meta.label for model in models}
    assert {"hub.Heartbeat", "messaging.OutboxEvent", "messaging.Event"} <= labels
    unregistered = sorted(model._meta.label for model in models if not admin.site.is_registered(model))
    assert unregistered == []


def test_every_registered_project_model_has_list_columns_and_search():
    for model in project_models():
        model_admin = admin.site._registry.get(model)
        if model_admin is None:
            continue  # reported by the test above
        assert len(model_admin.list_display) >= 2, model._meta.label
        assert model_admin.search_fields, model._meta.label


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/", "/admin/hub/heartbeat/", "/admin/auth/user/add/"])
def test_admin_pages_load_no_external_script_or_stylesheet(client, admin_user, path):
    if path != "/admin/login/":
        client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assets = assets_of(html)
    assert assets, "the page loads its theme's assets"
    # Same-origin only (the admin's /admin/jsi18n/ script is fine); nothing from another host.
    assert [asset for asset in assets if not asset.startswith("/") or asset.startswith("//")] == []
    assert "fonts.googleapis.com" not in html
    # The stylesheets themselves pull nothing from the internet either (AdminLTE and Bootswatch can @import fonts).
    for asset in assets:
        if asset.endswith(".css"):
            found = finders.find(asset.removeprefix(settings.STATIC_URL))
            assert found, asset
            assert not REMOTE_IN_CSS.search(Path(found).read_text(errors="replace")), asset


def test_the_admin_is_themed_by_jazzmin_with_the_hubs_name(client, admin_user):
    login_html = client.get("/admin/login/").content.decode()
    assert "Sign in to administer the hub" in login_html
    client.force_login(admin_user)
    html = client.get("/admin/").content.decode()
    assert "/static/vendor/adminlte/css/adminlte.min.css" in assets_of(html)
    assert "/static/hub/favicon.svg" in html
    assert "Back to the hub" in html
    assert 'href="/"' in html  # the top menu's way back to the hub's dashboard


def test_the_admin_menu_is_grouped_hub_first_then_messaging_oauth_auth(rf, admin_user):
    request = rf.get("/admin/")
    request.user = admin_user
    app_list = admin.site.get_app_list(request)
    names = [app["name"] for app in app_list]
    assert names[0] == "Hub"
    assert names[-3:] == ["Messaging", "OAuth", "Auth"]
    auth = app_list[-1]
    # django-axes' sign-in attempts sit with the users they lock out.
    assert {"Users", "Groups", "Access attempts"} <= {model["name"] for model in auth["models"]}
    assert "axes" not in [app["app_label"] for app in app_list]


def test_one_apps_index_page_still_lists_that_app_alone(admin_client):
    response = admin_client.get("/admin/axes/")
    assert response.status_code == 200
    assert [app["app_label"] for app in response.context["app_list"]] == ["axes"]


def test_heartbeats_show_name_liveness_age_and_interval_and_filter_by_state(admin_client):
    now = timezone.now()
    Heartbeat.objects.create(name="relay", beat_at=now - timedelta(seconds=5), interval_seconds=30)
    Heartbeat.objects.create(name="modem", beat_at=now - timedelta(minutes=10), interval_seconds=30)
    response = admin_client.get("/admin/hub/heartbeat/")
    text = " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())
    assert "Name Alive Beat at Age Interval seconds" in text
    html = response.content.decode()
    assert "10\xa0minutes" in html  # the modem's age
    assert 'alt="True"' in html  # the relay is alive
    assert 'alt="False"' in html  # the modem is lost

    def names(query):
        changelist = admin_client.get(f"/admin/hub/heartbeat/{query}").context["cl"]
        return [beat.name for beat in changelist.result_list]

    assert names("?state=alive") == ["relay"]
    assert names("?state=lost") == ["modem"]
    assert names("?q=mod") == ["modem"]


def test_heartbeats_are_written_by_workers_not_added_in_the_admin(admin_client):
    assert admin_client.get("/admin/hub/heartbeat/add/").status_code == 403


def test_the_admins_user_form_refuses_short_and_common_passwords(admin_client):
    for password in ("Zq8!k", "password123"):
        response = admin_client.post(
            "/admin/auth/user/add/",
            {"username": "dave", "usable_password": "true", "password1": password, "password2": password},
        )
        assert response.status_code == 200
        errors = " ".join(str(error) for error in response.context["adminform"].form.errors.values())
        assert "too short" in errors or "too common" in errors
    assert not User.objects.filter(username="dave").exists()
