"""The household's pages in Chromium: the home page's room tiles and a room page, live over /ws/push, honest when
the hub is gone, usable on a phone, in both colour modes. The screenshots the household guide shows
(docs/rooms.md) are taken here, into docs/images/.

Changes go through the REST API as the page sends them; the events they publish reach the other pages through the
real outbox relay and ``events.notify`` consumer on the in-memory bus, started by the ``event_pipeline`` fixture
(tests/browser/conftest.py) in this process (where the test server's push fan-out is). The rooms are made by
tests/browser/support.py's ``a_room``, shared with test_room_page.py.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.support import (
    PASSWORD,
    PHONE,
    PHONE_390,
    WAIT_MS,
    HubServer,
    a_room,
    history_for,
    radio_reporting,
    tile,
    wait_live,
)

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def announce(event_type: str, data: dict) -> None:
    """What the events.notify consumer does for a stored event, for tests that need no pipeline."""
    from messaging import push

    envelope = {"id": "x", "type": event_type, "occurred_at": "", "source": "heating", "data": data}
    push.fanout_sync("/events/" + event_type.replace(".", "/"), json.dumps(envelope).encode())


@pytest.fixture
def house(hub_server):
    """Three rooms as a household has them: the living room heating in manual mode, the kitchen on its schedule,
    the bedroom off; the radio reporting."""
    from heating.models import ScheduleBlock

    radio_reporting()
    living = a_room(
        "living", "Living room", 0xA1, temperature=20.64, heating=True, position=0, mode="manual", manual_target=21.0
    )
    kitchen = a_room("kitchen", "Kitchen", 0xA2, temperature=19.2, heating=False, position=1, mode="schedule")
    for weekday in range(7):
        ScheduleBlock.objects.create(
            room=kitchen, weekday=weekday, start_minute=6 * 60, end_minute=9 * 60, preset="comfort"
        )
        ScheduleBlock.objects.create(
            room=kitchen, weekday=weekday, start_minute=17 * 60, end_minute=22 * 60, preset="comfort"
        )
    bedroom = a_room("bedroom", "Bedroom", 0xA3, temperature=17.4, heating=False, position=2, mode="off")
    return {"living": living, "kitchen": kitchen, "bedroom": bedroom}


def screenshot(page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / name), full_page=True)


def test_a_target_changed_on_one_page_shows_on_another_within_a_second(signed_in_page, hub_user, house, event_pipeline):
    from heating.models import Room

    changer = signed_in_page(hub_user("alice"))
    watcher = signed_in_page(hub_user("bert"))
    for page in (changer, watcher):
        page.goto("/")
        expect(tile(page, "living").get_by_test_id("room-target")).to_have_text("21.0 °C")
        wait_live(page)

    with changer.expect_response(lambda response: response.request.method == "PATCH") as sent:
        tile(changer, "living").get_by_test_id("room-target-up").click()
        tile(changer, "living").get_by_test_id("room-target-up").click()
        # The page shows the new target at once, before the hub answers.
        expect(tile(changer, "living").get_by_test_id("room-target")).to_have_text("22.0 °C")
    assert sent.value.status == 200
    started = time.monotonic()
    expect(tile(watcher, "living").get_by_test_id("room-target")).to_have_text("22.0 °C", timeout=1000)
    assert time.monotonic() - started < 1.0
    assert Room.objects.get(slug="living").manual_target == 22.0
    # The mode picker travels the same way.
    tile(changer, "kitchen").get_by_test_id("room-mode-manual").click()
    expect(tile(watcher, "kitchen").get_by_test_id("room-mode")).to_have_text("Manual", timeout=1000)
    expect(tile(watcher, "kitchen").get_by_test_id("room-mode-manual")).to_have_count(1)
    expect(tile(watcher, "kitchen").get_by_test_id("room-mode-manual")).to_have_attribute("aria-pressed", "true")


def test_a_household_member_changes_a_target_on_a_phone(signed_in_page, hub_user, house, event_pipeline):
    from heating.models import Room

    phone = signed_in_page(hub_user("alice"), viewport=PHONE)
    phone.goto("/")
    living = tile(phone, "living")
    expect(living.get_by_test_id("room-temperature")).to_have_text("20.6 °C")
    expect(living.get_by_test_id("room-heating")).to_have_text("Heating now")
    with phone.expect_response(lambda response: response.request.method == "PATCH"):
        living.get_by_test_id("room-target-down").click()
    expect(living.get_by_test_id("room-target")).to_have_text("20.5 °C")
    assert Room.objects.get(slug="living").manual_target == 20.5
    # Boost from the tile, and stop it again.
    living.get_by_test_id("room-boost-button").click()
    expect(living.get_by_test_id("room-boost")).to_be_visible(timeout=WAIT_MS)
    expect(living.get_by_test_id("room-boost-button")).to_have_text("Stop boost")
    assert Room.objects.get(slug="living").boost_until is not None
    living.get_by_test_id("room-boost-button").click()
    expect(living.get_by_test_id("room-boost")).to_be_hidden(timeout=WAIT_MS)
    # A target the hub refuses says why, in the API's words (a room's target stops 1 °C below its maximum).
    Room.objects.filter(slug="living").update(manual_target=29.0)
    phone.reload()
    phone.evaluate(
        "() => window.hubRooms.request('PATCH', '/v1/rooms/living', {target: 40})"
        ".catch((error) => { window.refused = error.message; })"
    )
    assert "target" in phone.evaluate("() => window.refused")


def test_someone_without_control_sees_the_rooms_and_who_can_give_control(signed_in_page, house):
    from django.contrib.auth.models import User

    User.objects.create_user("bob", password=PASSWORD, is_staff=True)
    guest = User.objects.create_user("guest", password=PASSWORD)
    page = signed_in_page(guest)
    expect(tile(page, "living").get_by_test_id("room-temperature")).to_have_text("20.6 °C")
    expect(page.get_by_test_id("control-hint")).to_contain_text("bob")
    expect(page.get_by_test_id("room-target-up")).to_have_count(0)


def test_focus_and_scroll_stay_put_through_ten_live_updates_and_only_alerts_are_announced(
    signed_in_page, hub_user, house
):
    from heating.models import Alert, AlertKind, Reading

    page = signed_in_page(hub_user("alice"), viewport=PHONE)
    page.goto("/")
    wait_live(page)
    bedroom_down = tile(page, "kitchen").get_by_test_id("room-mode-off")
    bedroom_down.focus()
    page.evaluate("() => { window.focusedButton = document.activeElement; }")
    page.evaluate("() => window.scrollTo(0, 200)")
    scrolled = page.evaluate("() => window.scrollY")
    assert scrolled > 0
    node = house["kitchen"].temperature_node
    for step in range(10):
        value = 19.3 + step / 10
        Reading.objects.create(
            node=node, endpoint_id="162.11.0", name="RoomTemp", value=value, unit="C", recorded_at=timezone.now()
        )
        announce("heating.reading", {"id": "162.11.0", "value": value})
        expect(tile(page, "kitchen").get_by_test_id("room-temperature")).to_have_text(f"{value:.1f} °C")
        assert page.evaluate("() => document.activeElement === window.focusedButton"), f"focus lost at update {step}"
    assert page.evaluate("() => window.scrollY") == scrolled
    expect(page.get_by_test_id("rooms-announcer")).to_have_text("")  # readings are not read out
    Alert.objects.create(
        room=house["kitchen"],
        kind=AlertKind.SENSOR_STALE,
        message="No temperature for 40 min",
        raised_at=timezone.now(),
    )
    announce("heating.alert_raised", {"room": "kitchen", "kind": "sensor_stale"})
    expect(page.get_by_test_id("rooms-announcer")).to_have_text("Kitchen: No temperature for 40 min")
    expect(tile(page, "kitchen").get_by_test_id("room-alerts")).to_have_text("⚠ No temperature for 40 min")
    assert page.evaluate("() => document.activeElement === window.focusedButton")


@pytest.fixture
def own_server(hub_server, chromium):
    """A second hub server this test may stop and start again on the same port, and a browser context for it
    (the ``new_page`` fixture's pages may reach only the session's server)."""
    from hub.asgi import build_application

    state = {"server": HubServer(build_application(run_embedded=False))}
    state["url"] = state["server"].url
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, base_url=state["url"])
    context.set_default_timeout(WAIT_MS)

    def stop():
        state["server"].stop()

    def start():
        state["server"] = HubServer(build_application(run_embedded=False), port=state["server"].port)

    yield {"context": context, "stop": stop, "start": start}
    context.close()
    state["server"].stop()


def test_the_offline_banner_appears_when_the_hub_stops_and_goes_when_it_is_back(own_server, house, hub_user):
    from tests.browser.support import login

    page = own_server["context"].new_page()
    login(page, hub_user("alice"))
    expect(tile(page, "living").get_by_test_id("room-temperature")).to_have_text("20.6 °C")
    wait_live(page)
    expect(page.get_by_test_id("hub-offline")).to_be_hidden()

    own_server["stop"]()
    banner = page.get_by_test_id("hub-offline")
    expect(banner).to_be_visible(timeout=WAIT_MS)
    expect(banner).to_contain_text(re.compile(r"Hub offline — values from \d{1,2}:\d{2}"))
    expect(page.locator("#rooms")).to_have_class(re.compile(r"\bis-offline\b"))
    assert not re.search(r"\b(1006|1001|1012|4\d{3})\b", page.inner_text("main"))  # words, never close codes
    assert "reachable" not in page.inner_text("main")

    own_server["start"]()
    expect(banner).to_be_hidden(timeout=30_000)  # push.js's back-off decides when it tries again
    expect(page.locator("#rooms")).not_to_have_class(re.compile(r"\bis-offline\b"))


def test_a_down_radio_and_a_stale_sensor_are_said_in_words(signed_in_page, hub_user, house):
    from heating.models import Reading

    radio_reporting(up=False)
    Reading.objects.filter(node=house["bedroom"].temperature_node, name="RoomTemp").update(
        recorded_at=timezone.now() - timedelta(hours=3)
    )
    page = signed_in_page(hub_user("alice"))
    expect(page.get_by_test_id("radio-down")).to_have_text(
        "The radio link is down: temperatures and heaters are not updating."
    )
    expect(tile(page, "bedroom").get_by_test_id("room-stale")).to_contain_text("No reading since")
    expect(tile(page, "bedroom").get_by_test_id("room-temperature")).to_have_class(re.compile(r"\bis-stale\b"))


def test_the_schedule_is_edited_with_a_thumb_at_phone_width(new_page, hub_user, house, event_pipeline):
    from heating.models import ScheduleBlock
    from tests.browser.support import login

    phone = new_page(PHONE_390, has_touch=True, is_mobile=True)
    login(phone, hub_user("alice"))
    phone.goto("/rooms/living/")
    editor = phone.get_by_test_id("schedule-editor")
    editor.get_by_role("button", name="Workdays").tap()
    editor.get_by_test_id("schedule-add").tap()
    block = editor.get_by_test_id("schedule-block").last
    block.get_by_label("Block 1 starts").fill("06:30")
    block.get_by_label("Block 1 ends").fill("08:00")
    block.get_by_label("Block 1 temperature").select_option("comfort")
    editor.get_by_test_id("schedule-add").tap()
    evening = editor.get_by_test_id("schedule-block").last
    evening.get_by_label("Block 2 starts").fill("17:00")
    evening.get_by_label("Block 2 ends").fill("22:30")
    evening.get_by_label("Block 2 temperature").select_option("custom")
    evening.get_by_label("Block 2 °C").fill("20.5")
    editor.get_by_test_id("schedule-save").tap()
    expect(editor.get_by_test_id("schedule-message")).to_have_text(
        "Saved for Monday, Tuesday, Wednesday, Thursday, Friday."
    )
    blocks = list(
        ScheduleBlock.objects.filter(room=house["living"]).values_list("weekday", "start_minute", "end_minute")
    )
    assert sorted(blocks) == sorted(
        [(day, 6 * 60 + 30, 8 * 60) for day in range(5)] + [(day, 17 * 60, 22 * 60 + 30) for day in range(5)]
    )
    expect(phone.get_by_test_id("week-block")).to_have_count(10)
    # Every control fits the phone: nothing sticks out sideways, and each is big enough for a thumb.
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE_390["width"]
    save = editor.get_by_test_id("schedule-save").bounding_box()
    assert save["height"] >= 44
    # A block the hub refuses says which one and why.
    editor.get_by_test_id("schedule-add").tap()
    short = editor.get_by_test_id("schedule-block").last
    short.get_by_label("Block 3 starts").fill("23:00")
    short.get_by_label("Block 3 ends").fill("23:05")
    editor.get_by_test_id("schedule-save").tap()
    expect(editor.get_by_test_id("schedule-message")).to_contain_text("Not saved: blocks")
    # Copy the week to the kitchen.
    phone.reload()
    phone.get_by_text("Copy this week to other rooms").tap()
    phone.get_by_label("Kitchen").check()
    phone.get_by_test_id("schedule-copy").tap()
    expect(editor.get_by_test_id("schedule-message")).to_have_text("Copied to Kitchen.")
    assert ScheduleBlock.objects.filter(room=house["kitchen"]).count() == 10


#: Every visible text in the page's main part against the background it sits on: WCAG's contrast ratio, and where
#: it falls under AA (4.5:1; 3:1 for large text). Disabled controls are exempt, as WCAG says.
CONTRAST_FAILURES = """(root) => {
  const rgb = (css) => (css.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const colour = rgb(getComputedStyle(node).backgroundColor);
      if (colour.length >= 3 && (colour.length === 3 || colour[3] > 0.5)) return colour.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  let checked = 0;
  for (const element of root.querySelectorAll("*")) {
    const ownText = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const exempt = element.closest("[hidden], .visually-hidden, :disabled") || !element.getClientRects().length;
    if (!ownText || exempt) continue;
    const style = getComputedStyle(element);
    const fg = rgb(style.color);
    const alpha = fg.length > 3 ? fg[3] : 1;
    const bg = background(element);
    const shown = fg.slice(0, 3).map((c, i) => c * alpha + bg[i] * (1 - alpha));
    const [light, dark] = [luminance(shown), luminance(bg)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    checked += 1;
    if (!(ratio >= (large ? 3 : 4.5))) failures.push(element.textContent.trim().slice(0, 40) + " " + ratio.toFixed(2));
  }
  return { checked: checked, failures: failures };
}"""


@pytest.mark.parametrize("colour", ["light", "dark"])
def test_screenshots_for_the_household_guide_and_both_colour_modes(new_page, hub_user, house, colour):
    from heating.models import Alert, AlertKind, ScheduleBlock
    from tests.browser.support import DESKTOP, login

    history_for(house["living"])
    # The guide's room page shows a week: comfort mornings and evenings on workdays, a long weekend morning.
    for weekday, start, end in (
        [(day, 6 * 60 + 30, 8 * 60) for day in range(5)]
        + [(day, 17 * 60, 22 * 60 + 30) for day in range(5)]
        + [(day, 8 * 60, 23 * 60) for day in (5, 6)]
    ):
        ScheduleBlock.objects.create(
            room=house["living"], weekday=weekday, start_minute=start, end_minute=end, preset="comfort"
        )
    Alert.objects.create(
        room=house["bedroom"],
        kind=AlertKind.FROST,
        message="Below 7 °C: heating to protect from frost",
        raised_at=timezone.now(),
        cleared_at=timezone.now(),
    )
    user = hub_user("alice")
    suffix = "" if colour == "light" else "-dark"
    for viewport, name in [(DESKTOP, "desktop"), (PHONE_390, "phone")]:
        page = new_page(viewport, color_scheme=colour)
        login(page, user)
        expect(page.locator("html")).to_have_attribute("data-bs-theme", colour)
        expect(tile(page, "living").get_by_test_id("room-temperature")).to_have_text(re.compile(r"°C$"))
        # Dark mode renders: a dark page with light text, the tile's temperature readable on it.
        background, text = page.evaluate(
            """() => [getComputedStyle(document.body).backgroundColor,
                      getComputedStyle(document.querySelector('[data-testid=room-temperature]')).color]"""
        )
        brightness = lambda css: sum(int(part) for part in re.findall(r"\d+", css)[:3]) / 3  # noqa: E731
        if colour == "dark":
            assert brightness(background) < 60 < 180 < brightness(text), (background, text)
        else:
            assert brightness(background) > 200 > 100 > brightness(text), (background, text)
        contrast = page.locator("main").evaluate(CONTRAST_FAILURES)
        assert contrast["checked"] > 20
        assert contrast["failures"] == []
        screenshot(page, f"home-{name}{suffix}.png")
        page.goto("/rooms/living/")
        expect(page.get_by_test_id("room-chart").locator("canvas")).to_have_count(1, timeout=WAIT_MS)
        expect(page.get_by_test_id("room-chart-note")).to_contain_text("temperature points")
        expect(page.get_by_test_id("decisions")).to_contain_text("on: below target")
        contrast = page.locator("main").evaluate(CONTRAST_FAILURES)
        assert contrast["checked"] > 20
        assert contrast["failures"] == []
        screenshot(page, f"room-{name}{suffix}.png")


def test_a_page_whose_session_ended_says_signed_out_not_hub_offline(signed_in_page, hub_user, house):
    page = signed_in_page(hub_user("alice"))
    expect(tile(page, "living").get_by_test_id("room-temperature")).to_have_text("20.6 °C")
    page.context.clear_cookies()  # signed out elsewhere, or the session expired
    page.evaluate("() => window.hubRooms.refresh()")
    expect(page.get_by_test_id("signed-out")).to_be_visible()
    expect(page.get_by_test_id("signed-out")).to_contain_text("Sign in again")
    expect(page.get_by_test_id("hub-offline")).to_be_hidden()
    expect(page.locator("#rooms")).to_have_class(re.compile(r"\bis-offline\b"))  # the values are greyed all the same


def test_the_house_going_away_shows_on_an_open_home_page(signed_in_page, hub_user, house, event_pipeline):
    from heating.services import house_away_set

    page = signed_in_page(hub_user("alice"))
    wait_live(page)
    expect(page.get_by_test_id("house-away")).to_be_hidden()
    house_away_set(away=True, origin="test")
    expect(page.get_by_test_id("house-away")).to_be_visible(timeout=WAIT_MS)
    expect(tile(page, "kitchen").get_by_test_id("room-mode")).to_have_text("Schedule")
    expect(tile(page, "kitchen")).to_contain_text("house away")
