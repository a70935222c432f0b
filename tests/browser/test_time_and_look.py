"""Time and look: page times in the viewer's zone, house times labelled, dark mode with its toggle, contrast in
both modes, and the Events page's filter for readings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from messaging.event_store import events_store
from tests.browser.support import DESKTOP, PHONE, login
from tests.messaging.consume_support import make_event

MORNING = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)
# WCAG 2.x AA: 4.5:1 for normal text (1.4.3).
AA_NORMAL_TEXT = 4.5

# The contrast of an element's text against what is really behind it: its colour (alpha included) over the first
# opaque background among it and its ancestors, each translucent layer composited on the way.
CONTRAST = """
(selectors) => {
  const parse = (text) => {
    const numbers = text.match(/[\\d.]+/g).map(Number);
    return { r: numbers[0], g: numbers[1], b: numbers[2], a: numbers.length > 3 ? numbers[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const background = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour.a > 0) layers.push(colour);
      if (colour.a >= 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), { r: 255, g: 255, b: 255, a: 1 });
  };
  const luminance = (c) => {
    const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  };
  const results = [];
  for (const selector of selectors) {
    for (const element of document.querySelectorAll(selector)) {
      if (!element.offsetParent && getComputedStyle(element).position !== "fixed") continue; // not shown
      const behind = background(element);
      const text = over(parse(getComputedStyle(element).color), behind);
      const [light, dark] = [luminance(text), luminance(behind)].sort((a, b) => b - a);
      const rgb = (c) => `rgb(${Math.round(c.r)}, ${Math.round(c.g)}, ${Math.round(c.b)})`;
      results.push({
        selector,
        text: element.textContent.trim().slice(0, 40),
        colour: rgb(text),
        behind: rgb(behind),
        ratio: Math.round(((light + 0.05) / (dark + 0.05)) * 100) / 100,
      });
    }
  }
  return results;
}
"""
KEY_TEXT = [
    "h1",
    "main td",
    "main th",
    "main code",
    "main .text-body-secondary",
    "main .form-label",
    "main .form-check-label",
    "main a:not(.btn):not(.page-link)",
    ".navbar .nav-link",
    ".navbar-brand",
    "#hub-theme",
    "main .btn-primary",
    "main .page-link",
    "main .invalid-feedback",
]


def store_events(count: int = 1) -> None:
    events = [make_event(1, type="heating.node_seen", source="serial", occurred_at=MORNING)]
    events += [
        make_event(2 + index, type="heating.reading", source="serial", occurred_at=MORNING + timedelta(seconds=index))
        for index in range(count)
    ]
    events_store(events=events)


def staff_page_in(new_page, hub_user, *, username="sam", viewport=DESKTOP, **context_options):
    page = new_page(viewport, **context_options)
    login(page, hub_user(username, staff=True))
    return page


# --- Times ---------------------------------------------------------------------------------------------------


def test_event_times_show_in_the_viewers_own_zone_with_the_exact_utc_on_hover(new_page, hub_user):
    store_events()
    page = staff_page_in(new_page, hub_user, timezone_id="America/New_York", locale="en-US")
    page.goto("/events/")
    time = page.locator("main time").first
    assert time.get_attribute("datetime") == "2026-11-28T07:30:00.000Z"
    assert time.get_attribute("title") == "2026-11-28T07:30:00.000Z"
    # 07:30 UTC is 02:30 in New York in November (EST, UTC-5).
    expect(time).to_have_text(re.compile(r"^Nov 28, 2026,? 02:30:00\s?AM$"))

    tokyo = staff_page_in(new_page, hub_user, username="kim", timezone_id="Asia/Tokyo", locale="en-GB")
    tokyo.goto("/events/")
    expect(tokyo.locator("main time").first).to_have_text(re.compile(r"^28 Nov 2026,? 16:30:00$"))


def test_house_times_are_labelled_with_the_house_zone_only_for_a_viewer_elsewhere(new_page, hub_user, settings):
    away = staff_page_in(new_page, hub_user, timezone_id="America/New_York", locale="en-GB")
    away.goto("/events/")
    house_zone = away.locator("body").get_attribute("data-house-zone")
    assert house_zone, "the page names the house's zone"
    assert away.evaluate("hubTime.houseZoneLabel()") != ""
    labelled = away.evaluate("hubTime.inHouse('2026-11-28T07:30:00.000Z', 'time')")
    assert labelled.endswith(f"({away.evaluate('hubTime.houseZone')})"), labelled

    home = new_page(DESKTOP, timezone_id=house_zone, locale="en-GB")
    login(home, hub_user("kim", staff=True))
    home.goto("/events/")
    assert home.evaluate("hubTime.houseZoneLabel()") == ""
    assert "(" not in home.evaluate("hubTime.inHouse('2026-11-28T07:30:00.000Z', 'time')")


# --- Dark mode ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_follow_the_systems_colour_scheme(new_page, scheme):
    page = new_page(DESKTOP, color_scheme=scheme)
    page.goto("/login/")
    expect(page.locator("html")).to_have_attribute("data-bs-theme", scheme)
    background = page.locator("body").evaluate("element => getComputedStyle(element).backgroundColor")
    lightness = sum(int(value) for value in re.findall(r"\d+", background)[:3]) / 3
    assert (lightness < 80) if scheme == "dark" else (lightness > 200), background


def test_the_navbar_toggle_chooses_a_mode_that_is_remembered_and_applied_before_the_first_paint(new_page):
    page = new_page(DESKTOP, color_scheme="light")
    page.goto("/login/")
    toggle = page.locator("#hub-theme")
    expect(toggle).to_have_text("Theme: Auto")
    toggle.click()
    page.get_by_role("button", name="Dark", exact=True).click()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    expect(toggle).to_have_text("Theme: Dark")
    expect(page.locator("[data-hub-theme-value=dark]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-hub-theme-value=light]")).to_have_attribute("aria-pressed", "false")

    # On the next page the mode is already dark when <body> is first added: no light flash before it.
    page.add_init_script(
        """
        new MutationObserver((changes, observer) => {
          if (document.body) {
            window.themeWhenBodyAppeared = document.documentElement.getAttribute("data-bs-theme");
            observer.disconnect();
          }
        }).observe(document, { childList: true, subtree: true });
        """
    )
    page.reload()
    assert page.evaluate("window.themeWhenBodyAppeared") == "dark"
    expect(page.locator("#hub-theme")).to_have_text("Theme: Dark")

    # Back to auto: the system's light again.
    page.locator("#hub-theme").click()
    page.get_by_role("button", name="Auto (as the system)").click()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "light")
    page.emulate_media(color_scheme="dark")
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")


def test_the_toggle_is_reachable_at_phone_width_without_opening_the_menu(new_page, hub_user):
    phone = new_page(PHONE, has_touch=True, is_mobile=True, color_scheme="dark")
    phone.goto("/login/")
    expect(phone.locator("#hub-theme")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    login(phone, hub_user("pat", staff=True))
    toggler = phone.locator(".navbar-toggler")
    events = phone.locator("#hub-nav").get_by_role("link", name="Events")
    expect(phone.locator("#hub-theme")).to_be_visible()
    expect(events).to_be_hidden()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    toggler.tap()  # the menu still opens beside the theme button
    expect(events).to_be_visible()
    phone.locator("#hub-theme").tap()
    phone.locator("[data-hub-theme-value=light]").tap()
    expect(phone.locator("html")).to_have_attribute("data-bs-theme", "light")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("address", ["/events/", "/events/?since=yesterday", "/downloads/", "/"])
def test_key_text_passes_wcag_aa_contrast_in_both_modes(new_page, hub_user, scheme, address):
    store_events(count=60)  # enough for the pagination links
    page = staff_page_in(new_page, hub_user, color_scheme=scheme)
    page.goto(address)
    expect(page.locator("html")).to_have_attribute("data-bs-theme", scheme)
    measured = page.evaluate(CONTRAST, KEY_TEXT)
    assert len({result["selector"] for result in measured}) >= 5, measured
    failing = [result for result in measured if result["ratio"] < AA_NORMAL_TEXT]
    assert failing == [], failing


# --- The Events page's filter ------------------------------------------------------------------------------


def test_events_hide_readings_until_the_checkbox_brings_them_back(new_page, hub_user):
    store_events(count=3)
    page = staff_page_in(new_page, hub_user)
    page.goto("/events/")
    types = page.locator("main tbody td:nth-child(2)")
    expect(types).to_have_text(["heating.node_seen"])
    expect(page.get_by_test_id("noisy-hidden")).to_be_visible()

    page.get_by_label("Show heating.reading").check()
    page.get_by_role("button", name="Filter").click()
    expect(types).to_have_count(4)
    expect(page.get_by_label("Show heating.reading")).to_be_checked()
    expect(page.get_by_test_id("noisy-hidden")).to_have_count(0)


def test_filter_hints_read_as_hints_not_values(new_page, hub_user):
    page = staff_page_in(new_page, hub_user)
    page.goto("/events/")
    field = page.get_by_label("Type (prefix)")
    expect(field).to_have_value("")
    expect(field).to_have_attribute("placeholder", "e.g. heating.*")
    style = field.evaluate("element => getComputedStyle(element, '::placeholder').fontStyle")
    assert style == "italic"
    # Typing the hint as it stands filters as it suggests.
    field.fill("heating.*")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("main .is-invalid")).to_have_count(0)
    expect(page.locator("main tbody tr")).to_have_count(0)  # no events stored: the empty-state message instead
