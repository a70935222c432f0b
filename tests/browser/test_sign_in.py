"""Sign in through the form and see the home page (the house), on a laptop and on a phone."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.support import DESKTOP, PASSWORD, PHONE, login


def dashboard_url(hub_server: str) -> re.Pattern:
    return re.compile(re.escape(hub_server) + r"/$")


def test_signing_in_at_desktop_width_shows_the_dashboard_with_its_navigation(page, hub_server, hub_user):
    user = hub_user("alice")
    page.goto("/")
    # Anonymous: only the login page.
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    expect(page.get_by_role("heading", name="Sign in to the hub")).to_be_visible()

    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(dashboard_url(hub_server))
    expect(page.get_by_role("heading", name="Home", exact=True)).to_be_visible()
    navigation = page.locator("#hub-nav")
    expect(navigation.get_by_role("link", name="Home")).to_be_visible()
    expect(navigation.get_by_role("link", name="Live")).to_be_visible()
    expect(navigation.get_by_role("link", name="Downloads")).to_have_count(0)
    # At desktop width the whole bar shows, no toggler.
    expect(page.locator(".navbar-toggler")).to_be_hidden()
    # Bootstrap really loaded from the hub (whitenoise under uvicorn): the bar is dark, not unstyled.
    background = page.locator(".navbar").evaluate("element => getComputedStyle(element).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")
    assert user.get_username() in page.locator(".navbar").inner_text()


def test_at_phone_width_the_navigation_collapses_behind_the_toggler_and_opens_when_tapped(
    new_page, hub_server, hub_user
):
    phone = new_page(PHONE, has_touch=True, is_mobile=True)
    phone.goto("/login/")
    # The login page fits the phone's screen too.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    login(phone, hub_user("bob", staff=True))  # through the same form, as the desktop test does by hand
    expect(phone).to_have_url(dashboard_url(hub_server))
    expect(phone.get_by_role("heading", name="Home", exact=True)).to_be_visible()

    toggler = phone.locator(".navbar-toggler")
    devices = phone.locator("#hub-nav").get_by_role("link", name="Devices")
    expect(toggler).to_be_visible()
    expect(devices).to_be_hidden()
    # Nothing wider than the phone's screen.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    toggler.tap()
    expect(devices).to_be_visible()
    expect(toggler).to_have_attribute("aria-expanded", "true")
    # Staff see their sections too, and the menu leads somewhere real.
    expect(phone.locator("#hub-nav").get_by_role("link", name="Events")).to_be_visible()
    devices.click()
    expect(phone).to_have_url(re.compile(r"/devices/$"))
    expect(phone.get_by_role("heading", name="Devices")).to_be_visible()


def test_signing_out_from_the_menu_returns_to_the_login_page(signed_in_page, hub_user):
    page = signed_in_page(hub_user("carol"), viewport=DESKTOP)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
