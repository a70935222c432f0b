"""hub.env's strict readers: typed values from a mapping, and a message naming the variable for a bad one."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from hub.env import Env, parse_bind, parse_time_zone


def test_absent_and_blank_values_give_the_default():
    env = Env({"BLANK": "   "})
    assert env.str("MISSING", "fallback") == "fallback"
    assert env.str("BLANK", "fallback") == "fallback"
    assert env.int("BLANK", 7) == 7
    assert env.bool("BLANK", True) is True
    assert env.list("BLANK", ["a"]) == ["a"]
    assert env.is_set("BLANK") is False
    assert env.raw("MISSING") is None


def test_values_are_stripped():
    assert Env({"NAME": "  hub  "}).str("NAME") == "hub"


def test_str_or_empty_keeps_a_set_but_empty_value():
    env = Env({"PREFIX": ""})
    assert env.str_or_empty("PREFIX", "/home") == ""
    assert env.str_or_empty("UNSET", "/home") == "/home"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("true", True), ("Yes", True), ("ON", True), ("0", False), ("false", False), ("no", False)],
)
def test_bool_reads_the_usual_spellings(text, expected):
    assert Env({"FLAG": text}).bool("FLAG", not expected) is expected


def test_bool_refuses_anything_else_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG='maybe' is not valid: expected one of true/false"):
        Env({"DEBUG": "maybe"}).bool("DEBUG", False)


def test_int_reads_a_whole_number_within_its_bounds():
    env = Env({"CHANNEL": "2"})
    assert env.int("CHANNEL", 0, minimum=0, maximum=255) == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("abc", "expected a whole number"),
        ("2.5", "expected a whole number"),
        ("-1", "at least 0"),
        ("256", "at most 255"),
    ],
)
def test_int_refuses_a_bad_number_naming_the_variable(text, why):
    with pytest.raises(ImproperlyConfigured, match=f"^SWAP_CHANNEL='{text}' is not valid: .*{why}"):
        Env({"SWAP_CHANNEL": text}).int("SWAP_CHANNEL", 0, minimum=0, maximum=255)


def test_float_reads_a_decimal_number_within_its_bounds():
    env = Env({"HEATING_COLD_TOLERANCE": "0.25", "HEATING_MIN_ON_SECONDS": "180"})
    assert env.float("HEATING_COLD_TOLERANCE", 0.3, minimum=0) == 0.25
    assert env.float("HEATING_MIN_ON_SECONDS", 0.0, minimum=0) == 180.0
    assert env.float("UNSET", 0.3) == 0.3


@pytest.mark.parametrize(
    ("text", "why"), [("warm", "expected a number"), ("nan", "finite"), ("inf", "finite"), ("-0.1", "at least 0")]
)
def test_float_refuses_a_bad_number_naming_the_variable(text, why):
    with pytest.raises(ImproperlyConfigured, match=f"^HEATING_HOT_TOLERANCE='{text}' is not valid: .*{why}"):
        Env({"HEATING_HOT_TOLERANCE": text}).float("HEATING_HOT_TOLERANCE", 0.3, minimum=0, maximum=5)


def test_choice_accepts_only_its_choices():
    env = Env({"MODE": "production", "BAD": "prod"})
    assert env.choice("MODE", ("embedded", "production"), "embedded") == "production"
    with pytest.raises(ImproperlyConfigured, match=r"^BAD='prod' is not valid: expected one of embedded, production"):
        env.choice("BAD", ("embedded", "production"), "embedded")


def test_list_splits_on_commas_and_drops_empty_items():
    assert Env({"HOSTS": "a.example, b.example,,"}).list("HOSTS") == ["a.example", "b.example"]


def test_hex_checks_digits_and_length_and_upper_cases():
    env = Env({"SYNC": "b547", "SHORT": "B5", "NOT_HEX": "XYZ1"})
    assert env.hex("SYNC", "0000", digits=4) == "B547"
    assert env.hex("UNSET", "b547", digits=4) == "B547"
    with pytest.raises(ImproperlyConfigured, match=r"^SHORT='B5' is not valid: expected 4 hexadecimal digits"):
        env.hex("SHORT", "B547", digits=4)
    with pytest.raises(ImproperlyConfigured, match=r"^NOT_HEX='XYZ1' is not valid"):
        env.hex("NOT_HEX", "B547", digits=4)


def test_parsed_turns_a_value_error_into_a_message_naming_the_variable():
    env = Env({"HUB_BIND": "nonsense"})
    with pytest.raises(ImproperlyConfigured, match=r"^HUB_BIND='nonsense' is not valid: expected host:port \("):
        env.parsed("HUB_BIND", parse_bind, None, "expected host:port")
    assert env.parsed("UNSET", parse_bind, ("127.0.0.1", 8000), "expected host:port") == ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8000", ("127.0.0.1", 8000)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:8443", ("::1", 8443))],
)
def test_parse_bind_reads_host_and_port(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["nonsense", ":8000", "host:", "host:http", "host:0", "host:65536"])
def test_parse_bind_refuses_what_is_not_host_and_port(text):
    with pytest.raises(ValueError):  # noqa: PT011  (each case has its own message; the variable is named by Env)
        parse_bind(text)


def test_parse_time_zone_knows_the_zone_database():
    assert parse_time_zone("Europe/Madrid") == "Europe/Madrid"
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "Europe/"):
        with pytest.raises(ValueError, match="unknown time zone"):
            parse_time_zone(bad)


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("HUB_TEST_ONLY_VARIABLE", "42")
    assert Env().int("HUB_TEST_ONLY_VARIABLE", 0) == 42
