"""Legacy download links keep their expiry when the house's zone (HUB_TIME_ZONE) is set.

The old tool wrote expiry times as wall-clock text in its server's zone; DOWNLOADS_LEGACY_TZ is that zone. It
defaults to the old TIME_ZONE variable, else UTC, and never follows HUB_TIME_ZONE: a link handed out before the
house's zone was set must expire at the same instant after.
"""

from __future__ import annotations

import os
import runpy
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from downloads.signing import LegacyConfig, derived_key_ring, sign_legacy_link, verify_link

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "hub" / "settings.py"
ZONE_VARIABLES = ("HUB_TIME_ZONE", "TIME_ZONE")


@pytest.fixture
def settings_under(monkeypatch, tmp_path):
    """``settings_under(NAME=value, …)`` → hub/settings.py's globals with no zone or downloads variable but those."""

    def load(**variables: str) -> dict:
        for name in [name for name in os.environ if name.startswith("DOWNLOADS_") or name in ZONE_VARIABLES]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path))
        monkeypatch.setenv("DOWNLOADS_LEGACY_SECRET", "the-old-tools-secret")
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TIME_ZONE's deprecation, tested in tests/hub
            return runpy.run_path(str(SETTINGS_FILE))

    return load


def legacy_of(loaded: dict) -> LegacyConfig:
    """What the downloads app verifies legacy links with (downloads.services)."""
    return LegacyConfig(loaded["DOWNLOADS_LEGACY_SECRET"], loaded["DOWNLOADS_LEGACY_TZ"])


def test_a_legacy_links_expiry_is_unchanged_when_only_hub_time_zone_is_set(settings_under):
    before = settings_under()
    link = sign_legacy_link(legacy=legacy_of(before), customer="acme", expiry="2026-12-24T18:00", path="a/b.zip")
    keys = derived_key_ring(before["SECRET_KEY"])
    expires_before = verify_link(link, keys=keys, legacy=legacy_of(before)).expires_at
    assert expires_before == datetime(2026, 12, 24, 18, 0, tzinfo=UTC)

    after = settings_under(HUB_TIME_ZONE="Pacific/Auckland")
    assert after["TIME_ZONE"] == "Pacific/Auckland", "the house's zone did change"
    assert after["DOWNLOADS_LEGACY_TZ"].key == "UTC"
    assert verify_link(link, keys=keys, legacy=legacy_of(after)).expires_at == expires_before


def test_the_legacy_zone_stays_the_old_time_zone_when_hub_time_zone_is_set_too(settings_under):
    old_only = settings_under(TIME_ZONE="Europe/Madrid")
    both = settings_under(TIME_ZONE="Europe/Madrid", HUB_TIME_ZONE="Asia/Tokyo")
    assert old_only["DOWNLOADS_LEGACY_TZ"].key == both["DOWNLOADS_LEGACY_TZ"].key == "Europe/Madrid"
    assert both["TIME_ZONE"] == "Asia/Tokyo"
    link = sign_legacy_link(legacy=legacy_of(old_only), customer="acme", expiry="2026-07-01T12:00", path="f.iso")
    keys = derived_key_ring(old_only["SECRET_KEY"])
    # 12:00 in Madrid's summer time is 10:00 UTC, whichever zone the house is in.
    assert verify_link(link, keys=keys, legacy=legacy_of(both)).expires_at == datetime(2026, 7, 1, 10, tzinfo=UTC)


def test_an_explicit_legacy_zone_still_wins(settings_under):
    loaded = settings_under(TIME_ZONE="Europe/Madrid", HUB_TIME_ZONE="Asia/Tokyo", DOWNLOADS_LEGACY_TZ="Europe/Lisbon")
    assert loaded["DOWNLOADS_LEGACY_TZ"].key == "Europe/Lisbon"
