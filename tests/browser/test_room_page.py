"""A room's page in Chromium: the chart drawn from the hub's history over 24 h, 7 d and 30 d (never more points
than asked for), a refused schedule block showing the hub's words next to it on a 390 px phone, alerts
acknowledged from the page, schedule times naming the house's zone for a viewer elsewhere, and a stale sensor
greyed and said in words. (Editing and saving a week at 390 px, copying it and the guide's screenshots are in
test_rooms.py.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.support import (
    DESKTOP,
    PHONE_390,
    WAIT_MS,
    a_room,
    history_for,
    login,
    radio_reporting,
    tile,
    wait_live,
)

DAY = 24 * 3600


@pytest.fixture
def living(hub_server):
    """A living room on its schedule, 20.6 °C, heater on, the radio reporting."""
    radio_reporting()
    return a_room("living", "Living room", 0xA1, temperature=20.64, heating=True, position=0, mode="schedule")


def readings_every(room, *, minutes: int, days: int) -> int:
    """Temperature readings every ``minutes`` over ``days`` (a slow sine around 20 °C); how many were stored."""
    import math

    from heating.models import Reading

    node = room.temperature_node
    start = timezone.now() - timedelta(days=days)
    count = days * 24 * 60 // minutes
    Reading.objects.bulk_create(
        Reading(
            node=node,
            endpoint_id=f"{node.address}.11.0",
            name="RoomTemp",
            value=round(20 + 1.5 * math.sin(step / 50), 2),
            unit="C",
            recorded_at=start + timedelta(minutes=minutes * step),
        )
        for step in range(count)
    )
    return count


def chart_answer(page, button_test_id: str) -> dict:
    """Press a range button and return the history answer the chart was drawn from, with the URL asked."""
    with page.expect_response(re.compile(r"/v1/rooms/living/history\?")) as answer:
        page.get_by_test_id(button_test_id).click()
    response = answer.value
    assert response.status == 200
    return {"url": response.url, **response.json()}


def test_the_chart_draws_temperature_target_and_heating_over_a_day_a_week_and_a_month(signed_in_page, living):
    history_for(living)  # a day of readings every 10 minutes, heating on and off, and the decisions
    page = signed_in_page()
    page.goto("/rooms/living/")

    chart = page.get_by_test_id("room-chart")
    expect(chart.locator("canvas")).to_have_count(1, timeout=WAIT_MS)
    expect(chart).to_have_attribute("data-loaded", str(DAY))
    # 144 readings of the day (plus the fixture's current one), and hours of heating shaded behind the lines.
    note = page.get_by_test_id("room-chart-note")
    expect(note).to_contain_text(re.compile(r"^14[45] temperature points; shaded: a heater was on \((\d+\.\d) h\)"))
    heating_hours = float(re.search(r"\((\d+\.\d) h\)", note.inner_text()).group(1))
    assert 1 < heating_hours < 24
    legend = chart.locator(".u-legend")
    expect(legend).to_contain_text("Temperature")
    expect(legend).to_contain_text("Target")
    # The canvas holds a drawing, not an empty frame: many distinct colours (lines, shading, grid).
    colours = chart.locator("canvas").evaluate(
        """(canvas) => {
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          const seen = new Set();
          for (let i = 0; i < data.length; i += 16) seen.add(data[i] + ',' + data[i + 1] + ',' + data[i + 2]);
          return seen.size;
        }"""
    )
    assert colours > 10

    week = chart_answer(page, "chart-7d")
    expect(chart).to_have_attribute("data-loaded", str(7 * DAY))
    expect(page.get_by_test_id("chart-7d")).to_have_attribute("aria-pressed", "true")
    assert "points=" in week["url"]
    assert 7 * DAY - 60 < _seconds(week["until"]) - _seconds(week["since"]) <= 7 * DAY + 60
    assert week["heating"], "the week's heater-on periods reach the chart"


def test_a_month_of_readings_reaches_the_chart_downsampled(signed_in_page, living):
    stored = readings_every(living, minutes=5, days=30)
    page = signed_in_page()
    page.goto("/rooms/living/")
    expect(page.get_by_test_id("room-chart").locator("canvas")).to_have_count(1, timeout=WAIT_MS)

    month = chart_answer(page, "chart-30d")

    asked = int(re.search(r"points=(\d+)", month["url"]).group(1))
    assert asked <= 2000
    assert month["readings"] >= stored
    assert month["downsampled"] is True
    assert 0 < len(month["temperature"]) <= asked
    expect(page.get_by_test_id("room-chart")).to_have_attribute("data-loaded", str(30 * DAY))
    expect(page.get_by_test_id("room-chart-note")).to_contain_text(
        re.compile(rf"^{len(month['temperature'])} temperature points \(from {month['readings']:,} readings\);")
    )


def _seconds(iso: str) -> float:
    from hub.timefmt import parse_utc

    return parse_utc(iso).timestamp()


def test_a_refused_block_shows_the_hubs_words_next_to_it_on_a_phone(new_page, hub_user, living):
    from heating.models import ScheduleBlock

    phone = new_page(PHONE_390, has_touch=True, is_mobile=True)
    login(phone, hub_user("alice"))
    phone.goto("/rooms/living/")
    editor = phone.get_by_test_id("schedule-editor")
    editor.get_by_role("button", name="Weekend").tap()
    editor.get_by_test_id("schedule-add").tap()
    morning = editor.get_by_test_id("schedule-block").nth(0)
    morning.get_by_label("Block 1 starts").fill("08:00")
    morning.get_by_label("Block 1 ends").fill("10:00")
    editor.get_by_test_id("schedule-add").tap()
    short = editor.get_by_test_id("schedule-block").nth(1)
    short.get_by_label("Block 2 starts").fill("23:00")
    short.get_by_label("Block 2 ends").fill("23:05")
    editor.get_by_test_id("schedule-save").tap()

    # The hub's words under the block it refused, that block marked and focused; the other block untouched.
    problem = short.get_by_test_id("schedule-block-error")
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("lasts 5 minutes; a block lasts at least 15 minutes")
    expect(short.get_by_label("Block 2 ends")).to_have_attribute("aria-invalid", "true")
    expect(short.get_by_label("Block 2 starts")).to_be_focused()
    expect(morning.get_by_test_id("schedule-block-error")).to_be_hidden()
    expect(editor.get_by_test_id("schedule-message")).to_contain_text("Not saved")
    assert not ScheduleBlock.objects.filter(room=living).exists()
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE_390["width"]

    # A temperature outside the room's range: refused next to that block, naming the range.
    short.get_by_label("Block 2 ends").fill("23:30")
    expect(problem).to_be_hidden()  # changing the block takes the old words away
    short.get_by_label("Block 2 temperature").select_option("custom")
    short.get_by_label("Block 2 °C").fill("40")
    editor.get_by_test_id("schedule-save").tap()
    expect(problem).to_contain_text(re.compile(r"7(\.0)?.*29(\.0)?"))

    short.get_by_label("Block 2 °C").fill("19.5")
    editor.get_by_test_id("schedule-save").tap()
    expect(editor.get_by_test_id("schedule-message")).to_have_text("Saved for Saturday, Sunday.")
    expect(problem).to_be_hidden()
    stored = sorted(
        ScheduleBlock.objects.filter(room=living).values_list("weekday", "start_minute", "end_minute", "temperature")
    )
    assert stored == [
        (5, 8 * 60, 10 * 60, None),
        (5, 23 * 60, 23 * 60 + 30, 19.5),
        (6, 8 * 60, 10 * 60, None),
        (6, 23 * 60, 23 * 60 + 30, 19.5),
    ]


def test_an_alert_is_acknowledged_from_the_room_page_by_someone_with_control(
    new_page,
    hub_user,
    living,
    event_pipeline,
):
    from django.contrib.auth.models import User

    from heating.models import Alert, AlertKind

    alert = Alert.objects.create(
        room=living, kind=AlertKind.SENSOR_STALE, message="No temperature for 40 min", raised_at=timezone.now()
    )
    guest = User.objects.create_user("carol", password="x-long-password-1")
    viewer = new_page(DESKTOP)
    login(viewer, guest, password="x-long-password-1")
    viewer.goto("/rooms/living/")
    expect(viewer.get_by_test_id("alert-history")).to_contain_text("No temperature for 40 min")
    expect(viewer.get_by_test_id("alert-acknowledge")).to_have_count(0)
    # Another member of the household watches the room page and the home page (live: /events/heating/#).
    watcher = hub_user("bert")
    watched_room = new_page(DESKTOP)
    login(watched_room, watcher)
    watched_room.goto("/rooms/living/")
    home = new_page(DESKTOP)
    login(home, watcher)
    home.goto("/")
    expect(tile(home, "living").get_by_test_id("room-alerts")).to_have_text("⚠ No temperature for 40 min")
    wait_live(watched_room)
    wait_live(home)

    member = hub_user("alice")
    page = new_page(DESKTOP)
    login(page, member)
    page.goto("/rooms/living/")
    alerts = page.get_by_test_id("alert-history")
    alerts.get_by_role("button", name="Acknowledge: No temperature").click()

    expect(alerts).to_contain_text(re.compile(r"seen by (Alice|alice)"))
    expect(page.get_by_test_id("alert-acknowledge")).to_have_count(0)
    # The other open pages learn it from heating.alert_acknowledged, without a reload: the room page says who saw
    # it, the home page's tile keeps the alert (it is still open) marked seen.
    expect(watched_room.get_by_test_id("alert-history")).to_contain_text(
        re.compile(r"seen by (Alice|alice)"), timeout=2000
    )
    expect(watched_room.get_by_test_id("alert-acknowledge")).to_have_count(0)
    expect(tile(home, "living").get_by_test_id("room-alerts")).to_have_text(
        "⚠ No temperature for 40 min · seen", timeout=2000
    )
    alert.refresh_from_db()
    assert alert.acknowledged_by == member
    assert alert.cleared_at is None  # seen, still open until its cause is over


def test_schedule_times_name_the_house_zone_only_for_a_viewer_elsewhere(new_page, hub_user, living):
    user = hub_user("alice")
    away = new_page(DESKTOP, timezone_id="Pacific/Auckland", locale="en-GB")
    login(away, user)
    away.goto("/rooms/living/")
    house_zone = away.locator("body").get_attribute("data-house-zone")
    assert house_zone, "the page names the house's zone"
    assert house_zone != "Pacific/Auckland"
    expect(away.get_by_test_id("week-zone")).to_be_visible()
    expect(away.get_by_test_id("week-zone")).to_contain_text(re.compile(re.escape(house_zone) + "|UTC"))
    expect(away.get_by_test_id("schedule-zone-note")).to_contain_text("not your zone")

    home = new_page(DESKTOP, timezone_id=house_zone if house_zone != "UTC" else "Etc/UTC", locale="en-GB")
    login(home, user)
    home.goto("/rooms/living/")
    expect(home.get_by_test_id("schedule-editor")).to_be_visible()
    expect(home.get_by_test_id("week-zone")).to_be_hidden()
    expect(home.get_by_test_id("schedule-zone-note")).to_be_hidden()


def test_a_stale_sensor_is_greyed_and_said_in_words_on_the_room_page(signed_in_page, living):
    from heating.models import Reading

    Reading.objects.filter(name="RoomTemp").update(recorded_at=timezone.now() - timedelta(hours=3))
    page = signed_in_page()
    page.goto("/rooms/living/")

    temperature = page.get_by_test_id("room-temperature")
    expect(temperature).to_have_class(re.compile(r"\bis-stale\b"))
    expect(page.locator('[data-field="stale"]')).to_contain_text("No reading since")
    assert temperature.evaluate("(el) => Number(getComputedStyle(el).opacity)") < 1


def test_a_save_that_cannot_reach_the_hub_says_so_and_keeps_the_edits(signed_in_page, living):
    from heating.models import ScheduleBlock

    page = signed_in_page()
    page.goto("/rooms/living/")
    editor = page.get_by_test_id("schedule-editor")
    editor.get_by_test_id("schedule-add").click()
    editor.get_by_label("Block 1 starts").fill("07:00")
    editor.get_by_label("Block 1 ends").fill("09:00")
    page.route(re.compile(r"/v1/rooms/living/schedule$"), lambda route: route.abort("connectionrefused"))

    editor.get_by_test_id("schedule-save").click()

    message = editor.get_by_test_id("schedule-message")
    expect(message).to_have_text(re.compile(r"^Not saved: the hub could not be reached"))
    expect(message).not_to_contain_text("Failed to fetch")
    expect(editor.get_by_label("Block 1 starts")).to_have_value("07:00")
    assert not ScheduleBlock.objects.filter(room=living).exists()

    page.unroute(re.compile(r"/v1/rooms/living/schedule$"))
    editor.get_by_test_id("schedule-save").click()
    expect(message).to_have_text("Saved for Monday.")
    assert ScheduleBlock.objects.filter(room=living).count() == 1


def test_choosing_days_with_different_weeks_warns_before_saving_over_them(new_page, hub_user, living):
    from heating.models import ScheduleBlock

    ScheduleBlock.objects.create(room=living, weekday=0, start_minute=6 * 60, end_minute=8 * 60, preset="comfort")
    ScheduleBlock.objects.create(room=living, weekday=1, start_minute=7 * 60, end_minute=9 * 60, preset="comfort")
    for weekday in (2, 3, 4):
        ScheduleBlock.objects.create(
            room=living, weekday=weekday, start_minute=6 * 60, end_minute=8 * 60, preset="comfort"
        )
    phone = new_page(PHONE_390, has_touch=True, is_mobile=True)
    login(phone, hub_user("alice"))
    phone.goto("/rooms/living/")
    editor = phone.get_by_test_id("schedule-editor")
    differ = editor.get_by_test_id("schedule-days-differ")
    expect(differ).to_be_hidden()  # Monday alone

    editor.get_by_role("button", name="Workdays").tap()

    expect(differ).to_have_text(
        "Tuesday has other blocks than Monday now: saving gives every chosen day the blocks below."
    )
    expect(editor.get_by_label("Block 1 starts")).to_have_value("06:00")  # Monday's, to be given to all five
    editor.locator('label[for="day-1"]').tap()  # Tuesday out: the others match Monday
    expect(differ).to_be_hidden()


def test_each_block_is_named_by_its_place_after_loading_a_day_and_removing_one(signed_in_page, living):
    from heating.models import ScheduleBlock

    for start in (6, 12, 18):
        ScheduleBlock.objects.create(
            room=living, weekday=0, start_minute=start * 60, end_minute=start * 60 + 90, preset="comfort"
        )
    page = signed_in_page()
    page.goto("/rooms/living/")
    editor = page.get_by_test_id("schedule-editor")
    expect(editor.get_by_label("Block 3 starts")).to_have_value("18:00")

    editor.get_by_role("button", name="Remove block 1").click()

    expect(editor.get_by_label("Block 1 starts")).to_have_value("12:00")
    expect(editor.get_by_label("Block 2 starts")).to_have_value("18:00")
    expect(editor.get_by_label("Block 3 starts")).to_have_count(0)
