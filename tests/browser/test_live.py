"""The Live page in real Chromium against the real hub and the real Mosquitto, through the MQTT bridge.

The harness serves the ASGI app without its lifespan, so each test starts the bridge itself (in this process,
where the test server's push fan-out is: the in-memory push bus when ``REDIS_URL`` is unset, Redis otherwise).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from messaging.bridge import BridgeTimings, MqttBridge
from messaging.mqtt import HandlerRegistry, MqttTimings
from tests.browser.support import PHONE

MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
WAIT_MS = 10_000


def mosquitto_pub(url: str, topic: str, payload: str) -> None:
    parts = urlsplit(url)
    command = [MOSQUITTO_PUB, "-h", parts.hostname, "-p", str(parts.port), "-t", topic, "-m", payload, "-q", "1"]
    subprocess.run(command, check=True, timeout=10)


@pytest.fixture
def bridge(mqtt_url, hub_server) -> Iterator[MqttBridge]:
    # /news/# as in the live-push examples; the subscriptions then decide which browser gets what.
    running = MqttBridge(
        mqtt_url=mqtt_url,
        filters=["/news/#"],
        registry=HandlerRegistry(),  # the apps' handlers are not what these tests are about
        consume_events=False,
        receive_browser_publishes=False,
        timings=BridgeTimings(
            heartbeat_interval=3600, mqtt=MqttTimings(keepalive=30, retry_initial=0.05, retry_max=0.5)
        ),
    )
    running.start()
    assert running.wait_until_ready(15), "the bridge did not connect to Mosquitto"
    yield running
    running.stop(timeout=10)


@pytest.fixture
def news_reader(hub_user):
    """A household member whose group an admin granted /news/# (household gets /home/# etc. by default)."""
    from django.contrib.auth.models import Group

    from messaging.models import TopicGrant

    TopicGrant.objects.get_or_create(group=Group.objects.get(name="household"), topic_filter="/news/#")
    return hub_user("reader")


def subscribe(page, topic_filter: str) -> None:
    page.get_by_label("Topic pattern").fill(topic_filter)
    page.get_by_role("button", name="Subscribe", exact=True).click()
    chip = page.locator(f'[data-testid="live-subscription"][data-filter="{topic_filter}"]')
    expect(chip).to_have_attribute("data-state", "active", timeout=WAIT_MS)


def test_a_subscriber_of_news_plus_sport_sees_sport_and_not_weather(signed_in_page, news_reader, bridge, mqtt_url):
    page = signed_in_page(news_reader)
    page.goto("/live/")
    expect(page.get_by_test_id("live-status")).to_have_text("connected", timeout=WAIT_MS)
    subscribe(page, "/news/+/sport")
    marker = uuid.uuid4().hex[:8]

    mosquitto_pub(mqtt_url, "/news/europe/weather", f"rain {marker}")
    mosquitto_pub(mqtt_url, "/news/europe/sport", f"goal {marker}")

    messages = page.get_by_test_id("live-message")
    sport = messages.filter(has_text=f"goal {marker}")
    expect(sport).to_have_count(1, timeout=WAIT_MS)
    expect(sport.locator('[data-field="topic"]')).to_have_text("/news/europe/sport")
    expect(sport.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT.*Z$"))
    # The weather message was published first, so had it been delivered it would be on the page by now.
    expect(messages.filter(has_text=f"rain {marker}")).to_have_count(0)
    expect(page.get_by_test_id("live-empty")).to_be_hidden()


def test_after_unsubscribing_nothing_more_arrives(signed_in_page, news_reader, bridge, mqtt_url):
    page = signed_in_page(news_reader)
    page.goto("/live/")
    subscribe(page, "/news/#")
    mosquitto_pub(mqtt_url, "/news/asia/sport", "first")
    expect(page.get_by_test_id("live-message").filter(has_text="first")).to_have_count(1, timeout=WAIT_MS)

    page.get_by_role("button", name="Unsubscribe from /news/#").click()
    expect(page.get_by_test_id("live-subscription")).to_have_count(0)
    # Round trip a second subscription so the unsubscribe has surely reached the server before publishing.
    subscribe(page, "/news/+/weather")
    mosquitto_pub(mqtt_url, "/news/asia/sport", "second")
    mosquitto_pub(mqtt_url, "/news/asia/weather", "sunny")
    expect(page.get_by_test_id("live-message").filter(has_text="sunny")).to_have_count(1, timeout=WAIT_MS)
    expect(page.get_by_test_id("live-message").filter(has_text="second")).to_have_count(0)


def test_a_pattern_outside_the_users_grants_is_refused_with_the_servers_reason(signed_in_page, hub_user, bridge):
    page = signed_in_page(hub_user("plain"))  # household only: /home/# and /events/heating/#
    page.goto("/live/")
    page.get_by_label("Topic pattern").fill("/news/#")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    error = page.get_by_test_id("live-filter-error")
    expect(error).to_be_visible(timeout=WAIT_MS)
    expect(error).not_to_be_empty()
    expect(page.get_by_test_id("live-subscription")).to_have_count(0)
    expect(page.get_by_label("Topic pattern")).to_have_value("/news/#")


def test_the_live_page_works_at_a_phones_width(signed_in_page, news_reader, bridge, mqtt_url):
    page = signed_in_page(news_reader, viewport=PHONE)
    page.goto("/live/")
    subscribe(page, "/news/+/sport")
    payload = '{"score": "2-1", "team": "' + "a-very-long-team-name-" * 6 + '"}'
    mosquitto_pub(mqtt_url, "/news/europe/sport", payload)
    message = page.get_by_test_id("live-message").filter(has_text="2-1")
    expect(message).to_have_count(1, timeout=WAIT_MS)
    expect(message.locator('[data-field="payload"]')).to_contain_text('"score": "2-1"')  # JSON shown as JSON
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at a phone's width"
    button = page.get_by_role("button", name="Subscribe", exact=True).bounding_box()
    assert button["width"] > PHONE["width"] / 2, "the Subscribe button spans the phone's width"
