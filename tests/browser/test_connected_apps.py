"""A household member on a phone opens Connected apps from the menu and revokes a script that acts as them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken, set_token_value
from playwright.sync_api import expect

from tests.browser.support import PHONE_390, login


def a_connection(user, name: str, scope: str) -> AccessToken:
    app = Application.objects.create(
        name=name, client_type=Application.CLIENT_PUBLIC, authorization_grant_type=Application.GRANT_DEVICE_CODE
    )
    access = AccessToken(user=user, application=app, scope=scope, expires=timezone.now() + timedelta(hours=1))
    set_token_value(access, f"raw-{uuid.uuid4().hex}")
    access.save()
    refresh = RefreshToken(user=user, application=app, access_token=access, token_family=uuid.uuid4())
    set_token_value(refresh, f"refresh-{uuid.uuid4().hex}")
    refresh.save()
    return access


def test_a_household_user_on_a_phone_opens_connected_apps_and_revokes_a_script(new_page, hub_user):
    alice = hub_user("alice")
    script = a_connection(alice, "thermostat script", "heating:read heating:write")
    kept = a_connection(alice, "calendar sync", "read")
    phone = new_page(PHONE_390, has_touch=True, is_mobile=True)
    login(phone, alice)

    # From the folded menu, as a phone shows it.
    phone.locator(".navbar-toggler").tap()
    phone.locator("#hub-nav").get_by_role("link", name="Connected apps").tap()
    expect(phone.get_by_role("heading", name="Connected apps")).to_be_visible()
    rows = phone.locator("#connected-apps > li")
    expect(rows).to_have_count(2)
    row = rows.filter(has_text="thermostat script")
    expect(row).to_contain_text("heating:write")
    expect(row.locator("[data-field=expires] time")).not_to_be_empty()
    # It fits the phone: nothing wider than the screen, the button inside it.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    revoke = row.get_by_role("button", name="Revoke thermostat script")
    box = revoke.bounding_box()
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE_390["width"]

    revoke.tap()
    expect(phone.get_by_role("alert")).to_have_text("Revoked: thermostat script can no longer act as you.")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("calendar sync")
    assert not AccessToken.objects.filter(pk=script.pk).exists()
    assert RefreshToken.objects.get(application__name="thermostat script").revoked is not None
    assert AccessToken.objects.filter(pk=kept.pk).exists()
