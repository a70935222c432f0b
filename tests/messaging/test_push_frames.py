"""The push protocol's pure part: payload mapping, frames spliced from pre-encoded text, requests."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.push.frames import (
    BadRequest,
    PushMessage,
    encode_message,
    message_frame,
    parse_request,
)

MOMENT = datetime(2026, 11, 28, 7, 30, 0, 123456, tzinfo=UTC)


def strict_json(text: str):
    def refuse(name):
        raise ValueError(name)

    return json.loads(text, parse_constant=refuse)


def delivered(payload) -> dict:
    message = encode_message("/t", payload, received_at=MOMENT)
    return json.loads(message_frame(message.frame_prefix(retained=False), [1]))


@given(st.binary(max_size=200))
def test_any_bytes_arrive_as_json_value_string_or_base64_and_the_frame_is_json(payload):
    frame = delivered(payload)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        assert frame["encoding"] == "base64"
        assert base64.b64decode(frame["payload"]) == payload
        return
    assert "encoding" not in frame
    try:
        expected = strict_json(text)
    except ValueError:
        expected = text
    assert frame["payload"] == expected


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_utf8_json_bytes_arrive_as_that_value(value):
    assert delivered(json.dumps(value).encode())["payload"] == value


def test_a_python_value_is_written_as_json_once_and_the_frame_carries_topic_time_and_subs():
    message = encode_message('/quote"d/ü', {"t": 21.5}, received_at=MOMENT)
    frame = json.loads(message_frame(message.frame_prefix(retained=True), [1, "b"]))
    assert frame == {
        "op": "message",
        "topic": '/quote"d/ü',
        "payload": {"t": 21.5},
        "retained": True,
        "ts": "2026-11-28T07:30:00.123Z",
        "subs": [1, "b"],
    }


@given(topic=st.text(min_size=1), payload=st.binary(max_size=50))
def test_the_wire_form_between_processes_round_trips(topic, payload):
    message = encode_message(topic, payload, retain=True, received_at=MOMENT)
    assert PushMessage.from_wire(message.to_wire().encode()) == message


def test_an_empty_retained_payload_clears_and_other_empty_payloads_do_not():
    assert encode_message("/t", b"", retain=True).clears
    assert not encode_message("/t", b"", retain=False).clears
    assert not encode_message("/t", b'""', retain=True).clears


@pytest.mark.parametrize(
    ("text", "op", "payload"),
    [
        ('{"op": "ping"}', "ping", None),
        ('{"op": "publish", "topic": "/a", "payload": {"x": 1}, "id": 1}', "publish", {"x": 1}),
        ('{"op": "publish", "topic": "/a", "payload": "AP8=", "encoding": "base64", "id": 1}', "publish", b"\x00\xff"),
    ],
)
def test_requests_parse(text, op, payload):
    request = parse_request(text)
    assert (request.op, request.payload) == (op, payload)


def test_a_huge_frame_is_refused_without_parsing():
    with pytest.raises(BadRequest, match="at most"):
        parse_request('{"op": "ping", "pad": "' + "x" * 300_000 + '"}')
