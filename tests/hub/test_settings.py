"""The settings module under a chosen environment: strict values, production's demands, embedded defaults.

Each test executes ``hub/settings.py`` afresh (``runpy``) with only the variables
it sets, so the running test's own settings are never touched; one test starts a
real ``manage.py`` to show a bad value stops start-up.
"""

from __future__ import annotations

import os
import re
import runpy
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from downloads.keys import key_ring_from

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = PROJECT_ROOT / "hub" / "settings.py"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
# Every variable goes through a reader of hub.env, called with the name as a literal: env.int("SWAP_CHANNEL", …).
READ_BY_SETTINGS = re.compile(r"\benv\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"")
LISTED_IN_EXAMPLE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=", re.MULTILINE)

PRODUCTION = {
    "HUB_MODE": "production",
    "SECRET_KEY": "a-production-key-that-is-long-and-random-enough-0123456789abcdef",
    "ALLOWED_HOSTS": "hub.example.org",
    "AMQP_URL": "amqp://hub:secret@rabbitmq:5672//",
}


def names_read_by_settings() -> set[str]:
    return set(READ_BY_SETTINGS.findall(SETTINGS_FILE.read_text()))


def names_listed_in_example() -> list[str]:
    return LISTED_IN_EXAMPLE.findall(ENV_EXAMPLE.read_text())


@pytest.fixture
def load_settings(monkeypatch, tmp_path):
    """``load_settings(NAME=value, …)`` → the settings module's globals under exactly that environment."""

    def load(**environ: str) -> dict:
        for name in names_read_by_settings():
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_FILE), run_name="hub_settings_under_test")

    return load


def test_the_embedded_default_needs_no_variable(load_settings):
    loaded = load_settings()
    assert loaded["HUB_MODE"] == "embedded"
    assert loaded["DEBUG"] is False, "make run must not show Django's debug pages (URL map, settings) to the house"
    assert (loaded["HUB_BIND_HOST"], loaded["HUB_BIND_PORT"]) == ("127.0.0.1", 8000)
    assert loaded["CELERY_TASK_ALWAYS_EAGER"] is True
    assert loaded["CELERY_BROKER_URL"] == "memory://"
    assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SWAP_CHANNEL", "abc"),
        ("SWAP_CHANNEL", "256"),
        ("SWAP_SYNC_WORD", "XYZ1"),
        ("SWAP_ADDRESS", "123"),
        ("HUB_BIND", "nonsense"),
        ("HUB_BIND", "0.0.0.0:99999"),
        ("HUB_MODE", "prod"),
        ("HUB_PUBLIC_URL", "ftp://hub.local"),
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "nosuchdb://somewhere/hub"),
        ("SYSLOG_FACILITY", "nope"),
        ("SYSLOG_ADDRESS", "loghost-without-port"),
        ("LOG_LEVEL", "LOUD"),
        ("EVENTS_RETENTION_DAYS", "0"),
        ("AXES_FAILURE_LIMIT", "five"),
        ("TIME_ZONE", "Mars/Olympus_Mons"),
        ("MQTT_LAN_PLAIN_PORT", "yes"),
        ("MQTT_LAN_PLAIN_PORT", "70000"),
        ("MQTT_LAN_PLAIN_PORT", "lan:1883"),
        ("MQTT_RETAINED_REFRESH", "0"),
        ("MQTT_RETAINED_REFRESH", "soon"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(load_settings, name, value):
    with pytest.raises(ImproperlyConfigured) as raised:
        load_settings(**{name: value})
    assert str(raised.value).startswith(f"{name}={value!r} is not valid")


def test_a_malformed_value_stops_manage_py_with_the_variable_in_the_message(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key not in names_read_by_settings()}
    environment.update(SWAP_CHANNEL="abc", HUB_VAR_DIR=str(tmp_path))
    finished = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode != 0
    assert "ImproperlyConfigured: SWAP_CHANNEL='abc' is not valid: expected a whole number" in finished.stderr


def test_production_accepts_what_a_deployment_sets(load_settings):
    loaded = load_settings(**PRODUCTION)
    assert loaded["DEBUG"] is False
    assert loaded["ALLOWED_HOSTS"] == ["hub.example.org"]
    assert loaded["SECRET_KEY"] == PRODUCTION["SECRET_KEY"]
    # RabbitMQ carries Celery's tasks; nothing runs eagerly in the web process.
    assert loaded["CELERY_BROKER_URL"] == PRODUCTION["AMQP_URL"]
    assert loaded["CELERY_TASK_ALWAYS_EAGER"] is False


def test_production_sets_secure_cookies_hsts_and_trusts_the_proxy_for_https(load_settings):
    loaded = load_settings(**PRODUCTION)
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_the_embedded_default_sets_no_https_only_cookies(load_settings):
    # It is served over plain http on the home network; secure cookies would make sign-in impossible.
    loaded = load_settings()
    assert loaded.get("SESSION_COOKIE_SECURE", False) is False
    assert "SECURE_PROXY_SSL_HEADER" not in loaded


def test_production_refuses_debug(load_settings):
    with pytest.raises(ImproperlyConfigured, match="HUB_MODE=production refuses DEBUG"):
        load_settings(**PRODUCTION, DEBUG="true")


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "AMQP_URL"])
def test_production_refuses_to_start_without_a_required_variable(load_settings, missing):
    environ = {name: value for name, value in PRODUCTION.items() if name != missing}
    with pytest.raises(ImproperlyConfigured, match=f"HUB_MODE=production needs {missing} to be set"):
        load_settings(**environ)


def test_debug_is_on_only_when_asked_for_in_the_embedded_default(load_settings):
    assert load_settings(DEBUG="true")["DEBUG"] is True
    assert load_settings(HUB_BIND="0.0.0.0:8000")["DEBUG"] is False


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("changeme-please", "it has 15 characters, fewer than 50"),
        ("ab" * 40, "it has 2 distinct characters, fewer than 5"),
        ("django-insecure-" + secrets.token_urlsafe(50), "it starts with 'django-insecure-'"),
    ],
    ids=["short", "few-distinct-characters", "django-insecure-prefix"],
)
def test_production_refuses_a_weak_secret_key_and_says_to_keep_the_old_one_as_a_fallback(load_settings, key, why):
    with pytest.raises(ImproperlyConfigured) as raised:
        load_settings(**{**PRODUCTION, "SECRET_KEY": key})
    message = str(raised.value)
    assert message.startswith("HUB_MODE=production refuses to start: SECRET_KEY is too weak: " + why)
    assert "move the old key into SECRET_KEY_FALLBACKS" in message
    assert key not in message, "a secret never lands in a log"


def test_the_weak_key_rule_is_djangos_deployment_check():
    from django.core.checks.security import base

    from hub.env import (
        SECRET_KEY_INSECURE_PREFIX,
        SECRET_KEY_MIN_LENGTH,
        SECRET_KEY_MIN_UNIQUE_CHARACTERS,
        secret_key_weakness,
    )

    assert SECRET_KEY_MIN_LENGTH == base.SECRET_KEY_MIN_LENGTH
    assert SECRET_KEY_MIN_UNIQUE_CHARACTERS == base.SECRET_KEY_MIN_UNIQUE_CHARACTERS
    assert SECRET_KEY_INSECURE_PREFIX == base.SECRET_KEY_INSECURE_PREFIX
    for key in ("x", "a" * 49 + "b", "abcd" * 13, "abcde" * 10, "django-insecure-" + "abcdef" * 9):
        assert (secret_key_weakness(key) is None) == base._check_secret_key(key), key


def test_production_refuses_any_host(load_settings):
    with pytest.raises(ImproperlyConfigured, match=r"refuses to start: ALLOWED_HOSTS='\*' admits any Host header"):
        load_settings(**{**PRODUCTION, "ALLOWED_HOSTS": "hub.example.org,*"})


def test_production_refuses_the_in_memory_broker(load_settings):
    with pytest.raises(ImproperlyConfigured, match=r"refuses to start: AMQP_URL='memory://' keeps Celery tasks"):
        load_settings(**{**PRODUCTION, "AMQP_URL": "memory://"})


def test_production_names_every_weak_setting_at_once(load_settings):
    with pytest.raises(ImproperlyConfigured) as raised:
        load_settings(**{**PRODUCTION, "SECRET_KEY": "x", "ALLOWED_HOSTS": "*", "AMQP_URL": "memory://"})
    assert [part.split()[0] for part in str(raised.value).split(": ", 1)[1].split("; ")] == [
        "SECRET_KEY",
        "ALLOWED_HOSTS='*'",
        "AMQP_URL='memory://'",
    ]


def test_a_weak_key_moved_to_the_fallbacks_lets_production_start_and_still_verifies(load_settings):
    weak = "x"
    loaded = load_settings(**{**PRODUCTION, "SECRET_KEY_FALLBACKS": weak})
    assert loaded["SECRET_KEY_FALLBACKS"] == [weak]
    old = load_settings(SECRET_KEY=weak)
    # The downloads app makes its key ring from these settings (DOWNLOADS_KEYS unset: derived from the keys).
    old_ring = key_ring_from(old["DOWNLOADS_KEYS"], secret_key=old["SECRET_KEY"], fallbacks=old["SECRET_KEY_FALLBACKS"])
    ring = key_ring_from(
        loaded["DOWNLOADS_KEYS"], secret_key=loaded["SECRET_KEY"], fallbacks=loaded["SECRET_KEY_FALLBACKS"]
    )
    assert ring.active_id != old_ring.active_id, "new links name the new key"
    assert ring.secret(old_ring.active_id) == old_ring.secret(old_ring.active_id), "old links still verify"


def test_production_counts_an_empty_secret_key_as_missing(load_settings):
    with pytest.raises(ImproperlyConfigured, match="needs SECRET_KEY"):
        load_settings(**{**PRODUCTION, "SECRET_KEY": "  "})


def test_the_embedded_secret_key_is_random_generated_once_and_kept(load_settings, tmp_path):
    first = load_settings()["SECRET_KEY"]
    again = load_settings()["SECRET_KEY"]
    elsewhere = load_settings(HUB_VAR_DIR=str(tmp_path / "another-machine"))["SECRET_KEY"]

    assert first == again, "a restart must keep the key, or every session and signed value breaks"
    assert first != elsewhere, "two installations must never share a key"
    assert len(first) >= 50
    key_file = tmp_path / "var" / "secret_key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_an_explicit_secret_key_wins_in_the_embedded_default_and_nothing_is_written(load_settings, tmp_path):
    assert load_settings(SECRET_KEY="mine-and-long-enough")["SECRET_KEY"] == "mine-and-long-enough"
    assert not (tmp_path / "var" / "secret_key").exists()


def test_syslog_settings_add_a_syslog_handler_to_the_root_logger(load_settings):
    loaded = load_settings(SYSLOG_ADDRESS="127.0.0.1:514", SYSLOG_FACILITY="local3")
    assert "syslog" in loaded["LOGGING"]["root"]["handlers"]
    assert loaded["LOGGING"]["handlers"]["syslog"]["facility"] == "local3"
    assert "syslog" not in load_settings()["LOGGING"]["handlers"]


def test_settings_read_the_environment_only_through_the_strict_readers():
    source = SETTINGS_FILE.read_text()
    assert "os.environ" not in source
    assert "getenv" not in source


def test_env_example_lists_every_variable_the_settings_read_and_no_other():
    listed = names_listed_in_example()
    read = names_read_by_settings()
    assert sorted(set(listed) - read) == [], ".env.example lists variables hub/settings.py does not read"
    assert sorted(read - set(listed)) == [], ".env.example misses variables hub/settings.py reads"
    assert len(listed) == len(set(listed)), "a variable is listed twice"


def test_env_example_says_what_each_variable_means():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if LISTED_IN_EXAMPLE.match(line):
            assert index > 0, f"{line} has no description above it"
            above = lines[index - 1]
            assert above.startswith("# "), f"{line} has no description above it"
            assert not LISTED_IN_EXAMPLE.match(above), f"{line} has no description of its own above it"


def test_production_passes_djangos_deployment_checklist(tmp_path):
    """`manage.py check --deploy` finds nothing in the security settings but what nginx or the operator decides."""
    environment = {key: value for key, value in os.environ.items() if key not in names_read_by_settings()}
    environment.update(PRODUCTION, HUB_VAR_DIR=str(tmp_path))
    environment["SECRET_KEY"] = secrets.token_urlsafe(50)
    finished = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert "System check identified" in finished.stdout + finished.stderr
    reported = set(re.findall(r"\((security\.[EW]\d+)\)", finished.stdout + finished.stderr))
    # W008: nginx redirects http to https. W021: HSTS preload is a commitment only the operator can make.
    assert reported <= {"security.W008", "security.W021"}, finished.stderr
