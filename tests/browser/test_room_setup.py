"""Staff set a room up from the dashboard on a phone, and the house's away switch, in Chromium.

The away switch's change reaches the other open page as every room change does: heating.room_changed through the
real outbox relay and the ``events.notify`` consumer on the in-memory bus (the ``event_pipeline``
fixture of tests/browser/conftest.py).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.support import PHONE_390, WAIT_MS, wait_live


def heard_heater(address: int, name: str):
    """A room heater node the radio heard half a minute ago, in no room yet."""
    from heating.models import Node

    return Node.objects.create(
        address=address,
        manufacturer_id=72,
        product_id=1,
        definition="heater/Room heater",
        name=name,
        last_heard=timezone.now() - timedelta(seconds=30),
        reachable=True,
        system_state=1,
    )


def fits_the_width(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_staff_add_a_room_on_a_phone_and_it_is_on_the_home_page(signed_in_page, hub_user):
    from heating.models import Room

    node = heard_heater(0xB1, "Study heater")
    page = signed_in_page(hub_user("stella", staff=True), viewport=PHONE_390)

    page.goto("/")
    expect(page.get_by_test_id("rooms-empty")).to_be_visible()
    page.get_by_test_id("rooms-setup-link").click()
    page.get_by_test_id("room-add").click()
    assert fits_the_width(page)

    # A reserved id first: refused under the field, nothing stored.
    page.get_by_label("Name").fill("Study")
    page.get_by_label("Id").fill("hub")
    page.get_by_label("Temperature from").select_option(label="Study heater (b1): Room temperature (RoomTemp)")
    page.get_by_label("Study heater (b1): Heater relay (Heating)", exact=True).check()
    page.get_by_label("Power of Study heater (b1): Heater relay (Heating) (W)").fill("750")
    page.get_by_test_id("room-save").click()
    expect(page.get_by_test_id("error-slug")).to_contain_text("reserved")
    assert not Room.objects.exists()
    assert fits_the_width(page)

    page.get_by_label("Id").fill("study")
    page.get_by_test_id("room-save").click()
    expect(page.get_by_role("alert")).to_contain_text("Study added")
    room = Room.objects.get(slug="study")
    assert (room.temperature_node_id, room.temperature_endpoint) == (node.pk, "RoomTemp")
    assert list(room.heaters.values_list("endpoint", "power_w")) == [("Heating", 750)]

    page.get_by_role("link", name="Home").first.click()
    study = page.locator('[data-room="study"]')
    expect(study).to_be_visible()
    expect(study).to_contain_text("Study")
    assert fits_the_width(page)


def test_the_away_switch_turned_on_one_page_shows_on_another(signed_in_page, hub_user, event_pipeline):
    from heating.models import House
    from heating.services import room_create

    room_create(slug="living", name="Living room")
    switcher = signed_in_page(hub_user("alice"), viewport=PHONE_390)
    watcher = signed_in_page(hub_user("bert"))
    for page in (switcher, watcher):
        page.goto("/")
        wait_live(page)
        expect(page.get_by_test_id("house-away")).to_be_hidden()
        expect(page.get_by_test_id("house-away-switch")).not_to_be_checked()

    switcher.get_by_label("Away (whole house)").check()

    expect(watcher.get_by_test_id("house-away")).to_be_visible(timeout=WAIT_MS)
    expect(watcher.get_by_test_id("house-away-switch")).to_be_checked()
    expect(watcher.locator('[data-room="living"]')).to_contain_text("house away")
    expect(switcher.get_by_test_id("house-away")).to_be_visible()
    assert House.objects.get().away is True

    watcher.get_by_label("Away (whole house)").uncheck()
    expect(switcher.get_by_test_id("house-away")).to_be_hidden(timeout=WAIT_MS)
    expect(switcher.get_by_test_id("house-away-switch")).not_to_be_checked()
    assert House.objects.get().away is False
