"""/healthz says when plain MQTT is published on the LAN (MQTT_LAN_PLAIN_PORT), and stays silent otherwise."""

from __future__ import annotations

import pytest

from hub import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(monkeypatch):
    """The hub's own checks as ``register_builtin_checks`` makes them under the current settings."""
    monkeypatch.setattr(health, "_checks", {})

    def register() -> None:
        health.register_builtin_checks()

    return register


def test_plain_lan_mqtt_shows_in_the_health_report_when_published(client, settings, registry):
    settings.MQTT_LAN_PLAIN_PORT = "1883"
    registry()
    report = client.get("/healthz").json()  # the test client is a loopback probe: it sees details
    assert report["status"] == "ok", "an operator's choice, not a fault"
    check = report["checks"]["mqtt_lan_plain"]
    assert check["ok"] is True
    assert "plain MQTT (no TLS) is published on the LAN at 1883" in check["detail"]
    assert "in clear" in check["detail"]


def test_without_mqtt_lan_plain_port_the_report_has_no_such_check(client, settings, registry):
    settings.MQTT_LAN_PLAIN_PORT = ""
    registry()
    assert "mqtt_lan_plain" not in client.get("/healthz").json()["checks"]
