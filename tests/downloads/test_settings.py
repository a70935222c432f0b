"""The downloads settings are read strictly: a malformed value stops start-up naming the variable.

``DOWNLOADS_KEYS`` stays text in the settings; the downloads app makes the key ring (``downloads.keys``) and
checks it when the apps load, before anything is served.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from downloads.keys import key_ring_from
from tests.support.runhub import embedded_environment, manage

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = PROJECT_ROOT / "hub" / "settings.py"


def load(monkeypatch, tmp_path, **variables):
    for name in [name for name in __import__("os").environ if name.startswith("DOWNLOADS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def ring_of(loaded: dict):
    """The key ring the downloads app makes from these settings."""
    return key_ring_from(
        loaded["DOWNLOADS_KEYS"], secret_key=loaded["SECRET_KEY"], fallbacks=loaded["SECRET_KEY_FALLBACKS"]
    )


def test_downloads_keys_become_a_key_ring_with_the_first_active(monkeypatch, tmp_path):
    loaded = load(monkeypatch, tmp_path, DOWNLOADS_KEYS="new:" + "A" * 44 + ", old:" + "B" * 44)
    assert ring_of(loaded).active_id == "new"
    assert ring_of(loaded).secret("old") is not None


def test_without_downloads_keys_a_key_is_derived_from_the_secret_key(monkeypatch, tmp_path):
    first = ring_of(load(monkeypatch, tmp_path, SECRET_KEY="one-secret-key"))
    again = ring_of(load(monkeypatch, tmp_path, SECRET_KEY="one-secret-key"))
    other = ring_of(load(monkeypatch, tmp_path, SECRET_KEY="another-secret-key"))
    assert first == again
    assert first != other


def test_the_settings_name_no_app_and_keep_downloads_keys_as_text(monkeypatch, tmp_path):
    """hub/settings.py reads the environment only: parsing the keys is the downloads app's business."""
    text = "new:" + "A" * 44
    assert load(monkeypatch, tmp_path, DOWNLOADS_KEYS=text)["DOWNLOADS_KEYS"] == text


@pytest.mark.parametrize(
    ("value", "problem"),
    [("justonesecretwithoutid", "entry 1 is not key_id:base64secret"), ("k1:c2hvcnQ=", "shorter than 16 bytes")],
)
def test_malformed_downloads_keys_are_refused_naming_the_variable_not_the_secret(value, problem):
    with pytest.raises(ImproperlyConfigured, match="DOWNLOADS_KEYS is not valid") as raised:
        key_ring_from(value, secret_key="any-secret-key")
    assert problem in str(raised.value)
    assert value not in str(raised.value)  # a secret never lands in a log


def test_malformed_downloads_keys_stop_start_up(tmp_path):
    """The apps load (any manage.py command, or the ASGI application) and stop on a malformed DOWNLOADS_KEYS."""
    finished = manage(embedded_environment(tmp_path, DOWNLOADS_KEYS="k1:c2hvcnQ="), "check", timeout=60)
    assert finished.returncode != 0
    assert "ImproperlyConfigured: DOWNLOADS_KEYS is not valid: key 'k1' is shorter than 16 bytes" in (finished.stderr)
    assert "c2hvcnQ=" not in finished.stderr


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DOWNLOADS_LEGACY_TZ", "Mars/Olympus", "unknown time zone"),
        ("DOWNLOADS_DEFAULT_EXPIRY_DAYS", "0", "must be at least 1"),
    ],
)
def test_a_malformed_downloads_value_stops_start_up_naming_the_variable(monkeypatch, tmp_path, name, value, problem):
    with pytest.raises(ImproperlyConfigured, match=name) as raised:
        load(monkeypatch, tmp_path, **{name: value})
    assert problem in str(raised.value)


def test_the_legacy_zone_is_a_zone(monkeypatch, tmp_path):
    assert (
        load(monkeypatch, tmp_path, DOWNLOADS_LEGACY_TZ="Europe/Madrid")["DOWNLOADS_LEGACY_TZ"].key == "Europe/Madrid"
    )
