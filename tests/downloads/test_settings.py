"""The downloads settings are read strictly: a malformed value stops start-up naming the variable."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "hub" / "settings.py"


def load(monkeypatch, tmp_path, **variables):
    for name in [name for name in __import__("os").environ if name.startswith("DOWNLOADS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def test_downloads_keys_become_a_key_ring_with_the_first_active(monkeypatch, tmp_path):
    loaded = load(monkeypatch, tmp_path, DOWNLOADS_KEYS="new:" + "A" * 44 + ", old:" + "B" * 44)
    assert loaded["DOWNLOADS_KEYS"].active_id == "new"
    assert loaded["DOWNLOADS_KEYS"].secret("old") is not None


def test_without_downloads_keys_a_key_is_derived_from_the_secret_key(monkeypatch, tmp_path):
    first = load(monkeypatch, tmp_path, SECRET_KEY="one-secret-key")["DOWNLOADS_KEYS"]
    again = load(monkeypatch, tmp_path, SECRET_KEY="one-secret-key")["DOWNLOADS_KEYS"]
    other = load(monkeypatch, tmp_path, SECRET_KEY="another-secret-key")["DOWNLOADS_KEYS"]
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DOWNLOADS_KEYS", "justonesecretwithoutid", "entry 1 is not key_id:base64secret"),
        ("DOWNLOADS_KEYS", "k1:c2hvcnQ=", "shorter than 16 bytes"),
        ("DOWNLOADS_LEGACY_TZ", "Mars/Olympus", "unknown time zone"),
        ("DOWNLOADS_DEFAULT_EXPIRY_DAYS", "0", "must be at least 1"),
    ],
)
def test_a_malformed_downloads_value_stops_start_up_naming_the_variable(monkeypatch, tmp_path, name, value, problem):
    with pytest.raises(ImproperlyConfigured, match=name) as raised:
        load(monkeypatch, tmp_path, **{name: value})
    assert problem in str(raised.value)
    if name == "DOWNLOADS_KEYS":
        assert value not in str(raised.value)  # a secret never lands in a log


def test_the_legacy_zone_is_a_zone(monkeypatch, tmp_path):
    assert (
        load(monkeypatch, tmp_path, DOWNLOADS_LEGACY_TZ="Europe/Madrid")["DOWNLOADS_LEGACY_TZ"].key == "Europe/Madrid"
    )
