"""The admin's chrome: a search box for the page's own model, an icon per model, the hub's footer, the house's zone,
and an OAuth application form offering only what the hub supports."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils.text import capfirst
from jazzmin.settings import DEFAULT_SETTINGS
from oauth2_provider.models import Application

from hub.models import Heartbeat

pytestmark = pytest.mark.django_db

# jazzmin's top bar search: <form action="…" method="GET" class="d-flex ms-2"> … placeholder="Search …..."
NAVBAR_SEARCH = re.compile(r'<form action="([^"]*)" method="GET" class="d-flex ms-2">.*?placeholder="([^"]*)"', re.S)


def navbar_searches(response) -> list[tuple[str, str]]:
    return NAVBAR_SEARCH.findall(response.content.decode())


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_model_page_searches_that_model_and_no_other(admin_client):
    checked = []
    for model, model_admin in admin.site._registry.items():
        response = admin_client.get(changelist_url(model), follow=True)  # the one House: its change page
        assert response.status_code == 200, model._meta.label
        expected = [(changelist_url(model), f"Search {capfirst(model._meta.verbose_name_plural)}...")]
        assert navbar_searches(response) == (expected if model_admin.search_fields else []), model._meta.label
        checked.append(model._meta.label)
    assert {"hub.Heartbeat", "auth.User", "oauth2_provider.Application"} <= set(checked)


def test_a_change_page_searches_its_model_and_the_box_finds_rows(admin_client):
    Heartbeat.objects.create(name="relay", beat_at=datetime(2026, 12, 5, 12, tzinfo=UTC), interval_seconds=30)
    Heartbeat.objects.create(name="modem", beat_at=datetime(2026, 12, 5, 12, tzinfo=UTC), interval_seconds=30)
    page = admin_client.get("/admin/hub/heartbeat/relay/change/")
    [(action, placeholder)] = navbar_searches(page)
    assert (action, placeholder) == ("/admin/hub/heartbeat/", "Search Heartbeats...")
    found = admin_client.get(action, {"q": "mod"})
    assert [beat.name for beat in found.context["cl"].result_list] == ["modem"]


def test_a_page_an_admin_adds_itself_searches_its_model(rf, admin_user):
    # A view from a ModelAdmin's own get_urls carries no model_admin mark; its URL name says whose it is.
    from django.urls import ResolverMatch

    from hub.admin_theme import page_search

    request = rf.get("/admin/hub/heartbeat/relay/resend/")
    request.user = admin_user
    request.resolver_match = ResolverMatch(lambda request: None, (), {}, url_name="hub_heartbeat_resend")
    assert page_search(request) == [{"search_url": "/admin/hub/heartbeat/", "search_name": "Heartbeats"}]
    request.resolver_match = ResolverMatch(lambda request: None, (), {}, url_name="index")
    assert page_search(request) == []


@pytest.mark.parametrize("path", ["/admin/", "/admin/hub/", "/admin/password_change/"])
def test_pages_without_a_model_have_no_search_box_and_none_says_search_users(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 200
    assert navbar_searches(response) == []
    assert "Search Users" not in response.content.decode()


def fontawesome_css() -> str:
    found = finders.find("vendor/fontawesome-free/css/all.min.css")
    assert found, "jazzmin ships Font Awesome"
    return Path(found).read_text()


def test_every_registered_model_and_its_app_has_its_own_existing_icon():
    icons = {key.lower(): value for key, value in settings.JAZZMIN_SETTINGS["icons"].items()}
    generic = {DEFAULT_SETTINGS["default_icon_children"], DEFAULT_SETTINGS["default_icon_parents"]}
    css = fontawesome_css()
    missing = []
    for model in admin.site._registry:
        for key in (model._meta.label_lower, model._meta.app_label):
            icon = icons.get(key)
            if icon is None or icon in generic:
                missing.append(key)
                continue
            name = icon.split()[-1]  # "fas fa-link" → "fa-link"
            assert re.search(rf"\.{re.escape(name)}:{{1,2}}before", css), f"{key}: {icon} is not in Font Awesome"
    assert missing == []
    model_icons = [icons[model._meta.label_lower] for model in admin.site._registry]
    assert len(set(model_icons)) == len(model_icons), "each model its own icon"


def test_the_side_menu_and_index_draw_each_models_icon_not_a_generic_circle(admin_client):
    html = admin_client.get("/admin/").content.decode()
    icons = {key.lower(): value for key, value in settings.JAZZMIN_SETTINGS["icons"].items()}
    for model in admin.site._registry:
        link = re.search(
            rf'<a href="{re.escape(changelist_url(model))}" class="nav-link">\s*<i class="nav-icon ([^"]+)"', html
        )
        assert link, model._meta.label
        assert link.group(1) == icons[model._meta.label_lower], model._meta.label  # axes' under Auth included
    assert 'fa-circle"' not in html
    assert "fa-circle " not in html
    assert "fa-chevron-circle-right" not in html


@pytest.mark.parametrize("path", ["/admin/", "/admin/hub/heartbeat/", "/admin/auth/user/add/"])
def test_the_footer_names_the_hub_without_rights_reserved_or_theme_version(admin_client, path):
    html = admin_client.get(path).content.decode()
    [footer] = re.findall(r"<footer.*?</footer>", html, re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", footer).split())
    assert text.startswith("Hub · Times are in the house's zone")
    assert "All rights reserved" not in html
    assert "Jazzmin version" not in html
    assert "Copyright" not in html


def test_the_sign_in_page_says_no_rights_reserved(client):
    html = client.get("/admin/login/").content.decode()
    assert "All rights reserved" not in html
    assert "Jazzmin version" not in html


def test_admin_times_are_in_the_houses_zone_and_the_footer_names_it(admin_client, settings):
    settings.TIME_ZONE = "Europe/Berlin"  # what HUB_TIME_ZONE sets
    Heartbeat.objects.create(name="relay", beat_at=datetime(2026, 12, 5, 23, 30, tzinfo=UTC), interval_seconds=30)
    for path in ("/admin/hub/heartbeat/", "/admin/hub/heartbeat/relay/change/"):
        html = admin_client.get(path).content.decode()
        text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
        assert "Dec. 6, 2026, 12:30 a.m." in text, path  # 23:30 UTC is half past midnight in Berlin
        assert "11:30 p.m." not in text, path
        assert "Times are in the house's zone, Europe/Berlin" in text, path
        # The admin's date pickers ("Now", "Today") use the house's offset, not the browser's.
        assert 'data-admin-utc-offset="3600"' in html, path
    settings.TIME_ZONE = "America/New_York"
    text = " ".join(re.sub(r"<[^>]+>", " ", admin_client.get("/admin/hub/heartbeat/").content.decode()).split())
    assert "Dec. 5, 2026, 6:30 p.m." in text
    assert "Times are in the house's zone, America/New_York" in text


# --- The OAuth application form ---------------------------------------------------------------------------

ADD = "/admin/oauth2_provider/application/add/"
UNSUPPORTED_FIELDS = (
    "redirect_uris",
    "post_logout_redirect_uris",
    "algorithm",
    "allowed_origins",
    "skip_authorization",
    "registration_source",
    "cimd_expires_at",
    "user",
)


def field_names(html: str) -> set[str]:
    form = html[html.index('id="application_form"') :]
    return set(re.findall(r'name="([^"]+)"', form))


def form_value(html: str, name: str) -> str:
    return re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)


def test_the_application_form_offers_only_the_device_grant_and_no_oidc_or_cimd_field(admin_client):
    html = admin_client.get(ADD).content.decode()
    grants = re.findall(r'<input type="radio" name="authorization_grant_type" value="([^"]*)"', html)
    assert grants == [Application.GRANT_DEVICE_CODE]
    # Both client types work with it: a confidential one sends its secret to device-authorization/ and token/.
    client_types = re.findall(r'<input type="radio" name="client_type" value="([^"]*)"', html)
    assert sorted(client_types) == [Application.CLIENT_CONFIDENTIAL, Application.CLIENT_PUBLIC]
    assert "Resource owner password-based" not in html
    assert "OpenID connect hybrid" not in html
    names = field_names(html)
    assert {"name", "client_id", "client_type", "authorization_grant_type", "client_secret"} <= names
    assert names.isdisjoint(UNSUPPORTED_FIELDS)
    for label in ("Algorithm", "Post logout redirect uris", "Allowed origins", "CIMD", "Registration source"):
        assert label not in html


def test_the_oauth_group_lists_only_what_the_hub_uses(rf, admin_user):
    request = rf.get("/admin/")
    request.user = admin_user
    [oauth] = [app for app in admin.site.get_app_list(request) if app["name"] == "OAuth"]
    # No authorization codes ("Grants") nor OpenID Connect ID tokens: the hub serves neither.
    assert [model["object_name"] for model in oauth["models"]] == ["AccessToken", "Application", "RefreshToken"]


def submitted(admin_client, **overrides):
    html = admin_client.get(ADD).content.decode()
    fields = {
        "name": "thermostat script",
        "client_id": form_value(html, "client_id"),
        "client_secret": form_value(html, "client_secret"),
        "hash_client_secret": "on",
        "client_type": Application.CLIENT_PUBLIC,
        "authorization_grant_type": Application.GRANT_DEVICE_CODE,
        "_save": "Save",
    }
    return admin_client.post(ADD, {**fields, **overrides})


def test_the_application_form_saves_a_device_code_app(admin_client):
    # Fields the form no longer has are ignored if a client posts them anyway.
    response = submitted(
        admin_client, algorithm="RS256", redirect_uris="https://evil.example/cb", skip_authorization="on"
    )
    assert response.status_code == 302
    app = Application.objects.get(name="thermostat script")
    assert app.authorization_grant_type == Application.GRANT_DEVICE_CODE
    assert app.algorithm == ""
    assert app.redirect_uris == ""
    assert app.skip_authorization is False


@pytest.mark.parametrize("grant", [Application.GRANT_PASSWORD, Application.GRANT_IMPLICIT, "openid-hybrid"])
def test_the_application_form_refuses_a_posted_unsupported_grant(admin_client, grant):
    response = submitted(admin_client, authorization_grant_type=grant)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["authorization_grant_type"]
    assert errors == [
        "The hub supports only the device code grant: scripts and devices get tokens by a code a person approves "
        "(the password grant is switched off, RFC 9700)."
    ]
    assert not Application.objects.filter(name="thermostat script").exists()


def test_jazzmin_is_the_only_tag_library_name_with_two_modules():
    # templates.W003 is silenced in hub/settings.py for the deliberate "jazzmin" replacement; this keeps its job
    # for every other name.
    from django.template import engines
    from django.template.backends.django import get_template_tag_modules

    modules: dict[str, set[str]] = {}
    for name, path in get_template_tag_modules():
        modules.setdefault(name, set()).add(path)
    for name, path in engines["django"].engine.libraries.items():
        modules.setdefault(name, set()).add(path)
    assert {name: paths for name, paths in modules.items() if len(paths) > 1} == {
        "jazzmin": {"jazzmin.templatetags.jazzmin", "hub.admin_theme"}
    }
