"""The house's zone: HUB_TIME_ZONE, its default from /etc/localtime, and TIME_ZONE as a deprecated alias."""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from hub.env import system_time_zone

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "hub" / "settings.py"


@pytest.fixture
def load_settings(monkeypatch, tmp_path):
    """``load_settings(NAME=value, …)`` → (the settings' globals, the warnings raised while loading them)."""

    def load(**environ: str) -> tuple[dict, list[warnings.WarningMessage]]:
        for name in ("HUB_TIME_ZONE", "TIME_ZONE", "DOWNLOADS_LEGACY_TZ"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = runpy.run_path(str(SETTINGS_FILE), run_name="hub_settings_under_test")
        return loaded, [warning for warning in caught if "TIME_ZONE" in str(warning.message)]

    return load


def test_hub_time_zone_is_djangos_time_zone_with_aware_datetimes(load_settings):
    loaded, warned = load_settings(HUB_TIME_ZONE="Europe/Berlin")
    assert loaded["HUB_TIME_ZONE"] == loaded["TIME_ZONE"] == "Europe/Berlin"  # the admin shows the house's zone
    assert loaded["USE_TZ"] is True
    assert warned == []


@pytest.mark.parametrize("value", ["Mars/Olympus_Mons", "Berlin", "../etc/passwd"])
def test_an_unknown_zone_stops_start_up_naming_the_variable(load_settings, value):
    with pytest.raises(ImproperlyConfigured) as raised:
        load_settings(HUB_TIME_ZONE=value)
    assert str(raised.value) == f"HUB_TIME_ZONE={value!r} is not valid: expected an IANA time zone such as " + (
        "Europe/Madrid (unknown time zone)"
    )


def test_without_a_variable_the_zone_is_the_machines(load_settings):
    loaded, warned = load_settings()
    assert loaded["TIME_ZONE"] == system_time_zone()
    assert warned == []


def test_the_old_time_zone_is_read_with_a_deprecation_warning(load_settings):
    loaded, warned = load_settings(TIME_ZONE="America/Chicago")
    assert loaded["TIME_ZONE"] == loaded["HUB_TIME_ZONE"] == "America/Chicago"
    assert [warning.category for warning in warned] == [FutureWarning]  # shown to operators by default
    assert str(warned[0].message) == "TIME_ZONE is deprecated: set HUB_TIME_ZONE=America/Chicago instead"


def test_hub_time_zone_wins_over_the_old_name_which_still_warns(load_settings):
    loaded, warned = load_settings(TIME_ZONE="America/Chicago", HUB_TIME_ZONE="Asia/Tokyo")
    assert loaded["TIME_ZONE"] == "Asia/Tokyo"
    assert "HUB_TIME_ZONE is set and wins" in str(warned[0].message)


def test_a_malformed_old_time_zone_still_stops_start_up(load_settings):
    with pytest.raises(ImproperlyConfigured, match=r"^TIME_ZONE='Nowhere/Special' is not valid"):
        load_settings(TIME_ZONE="Nowhere/Special")


# --- The machine's zone, from where /etc/localtime links to ------------------------------------------------


def test_the_machines_zone_is_the_name_localtime_links_to(tmp_path):
    localtime = tmp_path / "localtime"
    localtime.symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    assert system_time_zone(localtime) == "Europe/Berlin"


def test_a_relative_link_and_a_posix_one_give_the_plain_name(tmp_path):
    (tmp_path / "etc").mkdir()
    relative = tmp_path / "etc" / "localtime"
    relative.symlink_to("../usr/share/zoneinfo/America/Argentina/Buenos_Aires")
    assert system_time_zone(relative) == "America/Argentina/Buenos_Aires"
    posix = tmp_path / "posix-localtime"
    posix.symlink_to("/usr/share/zoneinfo/posix/Asia/Kolkata")
    assert system_time_zone(posix) == "Asia/Kolkata"


def test_no_link_a_copied_file_or_an_unknown_name_give_utc(tmp_path):
    assert system_time_zone(tmp_path / "absent") == "UTC"
    copied = tmp_path / "copied"
    copied.write_bytes(b"TZif2")  # some images copy the zone's data: it carries no name
    assert system_time_zone(copied) == "UTC"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.symlink_to("/opt/zones/Europe/Berlin")
    assert system_time_zone(elsewhere) == "UTC"
    unknown = tmp_path / "unknown"
    unknown.symlink_to("/usr/share/zoneinfo/Atlantis/Capital")
    assert system_time_zone(unknown) == "UTC"
