"""The hub's topic matching agrees with Paho's and Mosquitto's own, on every filter and topic of a small grid.

The grid is every topic of one to three levels over "", "a", "b" and "$SYS" (empty levels give leading, trailing
and double slashes; "$SYS" the rule that a wildcard does not open a '$' topic), against every valid filter of one
to three levels over those and "+" and "#": 15,355 pairs. Paho answers with ``topic_matches_sub``; Mosquitto with
``mosquitto_topic_matches_sub`` from libmosquitto, the library its clients (and Debian's broker package) use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools

import pytest
from paho.mqtt.client import topic_matches_sub

from messaging.topics import matches
from tests.support.services import in_ci

TOPIC_LEVELS = ("", "a", "b", "$SYS")
FILTER_LEVELS = (*TOPIC_LEVELS, "+", "#")


def grid(levels: tuple[str, ...], *, wildcards: bool) -> list[str]:
    joined = set()
    for count in (1, 2, 3):
        for parts in itertools.product(levels, repeat=count):
            if wildcards and "#" in parts[:-1]:
                continue  # '#' only closes a filter
            if name := "/".join(parts):
                joined.add(name)
    return sorted(joined)


TOPICS = grid(TOPIC_LEVELS, wildcards=False)
FILTERS = grid(FILTER_LEVELS, wildcards=True)


def mosquitto_matcher():
    path = ctypes.util.find_library("mosquitto")
    if path is None:
        message = "libmosquitto is not installed (Debian: libmosquitto1, brought by mosquitto-clients)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    function = ctypes.CDLL(path).mosquitto_topic_matches_sub
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_bool)]

    def mosquitto_matches(topic_filter: str, topic: str) -> bool:
        result = ctypes.c_bool()
        assert function(topic_filter.encode(), topic.encode(), ctypes.byref(result)) == 0, (topic_filter, topic)
        return result.value

    return mosquitto_matches


def test_the_grid_is_the_size_it_claims():
    assert (len(TOPICS), len(FILTERS), len(TOPICS) * len(FILTERS)) == (83, 185, 15_355)


def test_every_pair_is_answered_as_paho_and_mosquitto_answer_it():
    mosquitto_matches = mosquitto_matcher()
    disagreements = [
        (topic_filter, topic, ours, paho, mosquitto)
        for topic_filter in FILTERS
        for topic in TOPICS
        if not (
            (ours := matches(topic_filter, topic))
            == (paho := topic_matches_sub(topic_filter, topic))
            == (mosquitto := mosquitto_matches(topic_filter, topic))
        )
    ]
    assert disagreements == [], "(filter, topic, hub, paho, mosquitto)"
