"""MQTT 3.1.1 §4.7 topic filters: the spec's own examples, and properties against a reference reading of it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.topics import (
    FilterIndex,
    InvalidTopicError,
    covers,
    matches,
    minimal_filters,
    validate_filter,
    validate_topic,
)

# --- the spec's examples (MQTT 3.1.1 §4.7.1.2, §4.7.1.3, §4.7.2, §4.7.3) and the live-push examples' ------------

MATCHING = [
    ("sport/tennis/player1/#", "sport/tennis/player1"),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"),
    ("sport/#", "sport"),
    ("#", "sport/tennis"),
    ("#", "/"),
    ("sport/tennis/+", "sport/tennis/player1"),
    ("sport/tennis/+", "sport/tennis/player2"),
    ("sport/+", "sport/"),
    ("+/+", "/finance"),
    ("/+", "/finance"),
    ("+", "sport"),
    ("+/tennis/#", "sport/tennis"),
    ("sport/+/player1", "sport/tennis/player1"),
    ("$SYS/#", "$SYS/monitor/Clients"),
    ("$SYS/monitor/+", "$SYS/monitor/Clients"),
    ("/", "/"),
    ("/news/+/sport", "/news/europe/sport"),
    ("/news/#", "/news/europe/sport"),
    ("/news/#", "/news/europe/weather"),
    ("sport/tennis", "sport/tennis"),
]

NOT_MATCHING = [
    ("sport/tennis/+", "sport/tennis/player1/ranking"),
    ("sport/+", "sport"),
    ("+", "/finance"),
    ("#", "$SYS/monitor/Clients"),
    ("#", "$SYS"),
    ("+/monitor/Clients", "$SYS/monitor/Clients"),
    ("+", "$SYS"),
    ("ACCOUNTS", "Accounts"),
    ("/finance", "finance"),
    ("/news/+/sport", "/news/europe/weather"),
    ("sport/tennis/player1/#", "sport/tennis"),
    ("sport/tennis", "sport/tennis/"),
]


@pytest.mark.parametrize(("topic_filter", "topic"), MATCHING)
def test_spec_examples_that_match(topic_filter, topic):
    assert matches(topic_filter, topic)
    index = FilterIndex()
    index.add(topic_filter, "subscriber")
    assert index.match(topic) == {"subscriber"}


@pytest.mark.parametrize(("topic_filter", "topic"), NOT_MATCHING)
def test_spec_examples_that_do_not_match(topic_filter, topic):
    assert not matches(topic_filter, topic)
    index = FilterIndex()
    index.add(topic_filter, "subscriber")
    assert index.match(topic) == set()


@pytest.mark.parametrize(
    ("bad_filter", "reason"),
    [
        ("a/#/b", "last level"),
        ("sport/tennis/#/ranking", "last level"),
        ("sport/tennis#", "whole level"),
        ("#abc", "whole level"),
        ("sp+ort", "whole level"),
        ("sport+", "whole level"),
        ("sport/+tennis", "whole level"),
        ("", "empty"),
        ("a\x00b", "NUL"),
        ("a" * 65_536, "65535 bytes"),
        ("é" * 32_768, "65535 bytes"),  # 32,768 characters but 65,536 bytes of UTF-8
        ("a/\ud800", "UTF-8"),
    ],
)
def test_invalid_filters_are_refused_with_the_rule_they_break(bad_filter, reason):
    with pytest.raises(InvalidTopicError, match=reason):
        validate_filter(bad_filter)
    with pytest.raises(InvalidTopicError):
        FilterIndex().add(bad_filter, "subscriber")


@pytest.mark.parametrize("good_filter", ["#", "+", "/", "/+", "+/+", "+/tennis/#", "sport/+/player1", "a" * 65_535])
def test_valid_filters_pass(good_filter):
    assert validate_filter(good_filter) == good_filter


@pytest.mark.parametrize("bad_topic", ["a/+", "a/#", "+", "#", "", "a\x00", "x" * 65_536])
def test_topic_names_have_no_wildcards_and_follow_the_common_rules(bad_topic):
    with pytest.raises(InvalidTopicError):
        validate_topic(bad_topic)
    with pytest.raises(InvalidTopicError):
        FilterIndex().match(bad_topic)


def test_matches_refuses_a_wildcard_topic_instead_of_answering():
    with pytest.raises(InvalidTopicError):
        matches("#", "sport/+")


def test_index_add_and_remove_report_first_and_last_subscriber():
    index = FilterIndex()
    assert index.add("/news/#", "alice") is True
    assert index.add("/news/#", "bob") is False
    assert index.add("/news/#", "bob") is False
    assert index.add("/news/+/sport", "alice") is True
    assert index.match("/news/europe/sport") == {"alice", "bob"}
    assert index.match_filters("/news/europe/sport") == {
        "/news/#": frozenset({"alice", "bob"}),
        "/news/+/sport": frozenset({"alice"}),
    }
    assert index.remove("/news/#", "alice") is False
    assert index.remove("/news/#", "nobody") is False
    assert index.remove("/news/#", "bob") is True
    assert "/news/#" not in index
    assert index.match("/news/europe/weather") == set()
    assert index.match("/news/europe/sport") == {"alice"}
    assert index.remove("/news/+/sport", "alice") is True
    assert len(index) == 0
    assert index._root.children == {}, "removing the last filter prunes its branch"


# --- properties against a reference reading of §4.7 -------------------------------------------------------


def reference_matches(topic_filter: str, topic: str) -> bool:
    """§4.7 read as a regular expression: '+' is one level of any characters but '/', a trailing '#' is
    "this level and every child level", so 'a/#' is 'a' optionally followed by '/' and anything, and a filter
    starting with a wildcard never matches a topic starting with '$' (§4.7.2)."""
    if topic.startswith("$") and topic_filter[0] in "+#":
        return False
    if topic_filter == "#":
        return True
    pattern = ""
    levels = topic_filter.split("/")
    for position, level in enumerate(levels):
        separator = "" if position == 0 else "/"
        if level == "#":
            pattern += f"(?:{re.escape(separator)}.*)?"
        elif level == "+":
            pattern += re.escape(separator) + "[^/]*"
        else:
            pattern += re.escape(separator + level)
    return re.fullmatch(pattern, topic, flags=re.DOTALL) is not None


# Few distinct levels so that filters and topics collide often; "" gives leading, trailing and double slashes.
LEVELS = ["", "a", "b", "sport", "$SYS", "é", " "]
topic_names = st.lists(st.sampled_from(LEVELS), min_size=1, max_size=5).map("/".join).filter(bool)


@st.composite
def topic_filters(draw):
    levels = draw(st.lists(st.sampled_from([*LEVELS, "+", "+"]), min_size=0, max_size=4))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    joined = "/".join(levels)
    return joined or "#"


@pytest.mark.slow
@settings(max_examples=3000, deadline=None)
@given(topic_filter=topic_filters(), topic=topic_names)
def test_matches_agrees_with_the_reference_reading(topic_filter, topic):
    assert matches(topic_filter, topic) == reference_matches(topic_filter, topic)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(
    filters=st.lists(topic_filters(), min_size=1, max_size=25),
    topics=st.lists(topic_names, min_size=1, max_size=10),
    removed=st.sets(st.integers(min_value=0, max_value=24)),
)
def test_index_agrees_with_the_reference_reading(filters, topics, removed):
    index = FilterIndex()
    for number, topic_filter in enumerate(filters):
        index.add(topic_filter, number)
    for number in removed:
        if number < len(filters):
            index.remove(filters[number], number)
    kept = {number: f for number, f in enumerate(filters) if number not in removed}
    for topic in topics:
        expected = {number for number, f in kept.items() if reference_matches(f, topic)}
        assert index.match(topic) == expected
        assert set(index.match_filters(topic)) == {kept[number] for number in expected}


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(wider=topic_filters(), narrower=topic_filters(), topics=st.lists(topic_names, min_size=1, max_size=20))
def test_covers_never_claims_a_topic_the_wider_filter_misses(wider, narrower, topics):
    if covers(wider, narrower):
        for topic in topics:
            if reference_matches(narrower, topic):
                assert reference_matches(wider, topic)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(filters=st.lists(topic_filters(), min_size=1, max_size=8), topics=st.lists(topic_names, max_size=20))
def test_minimal_filters_match_the_same_topics(filters, topics):
    reduced = minimal_filters(filters)
    assert set(reduced) <= set(filters)
    for topic in topics:
        assert any(reference_matches(f, topic) for f in reduced) == any(reference_matches(f, topic) for f in filters)


def test_minimal_filters_drop_what_a_wider_filter_covers():
    assert minimal_filters(["/home/#", "#", "/home/+/action/#", "$SYS/#"]) == ["#", "$SYS/#"]
    assert minimal_filters(["/home/+/measure/+", "/home/kitchen/measure/1", "/home/+/action/#"]) == [
        "/home/+/measure/+",
        "/home/+/action/#",
    ]
    assert minimal_filters(["a/+", "a/+"]) == ["a/+"]
