"""The ``/ws/push`` wire protocol: payload mapping, message frames, client requests. Pure: no Django.

A message is encoded ONCE when it enters the hub (:func:`encode_message`): its payload becomes JSON text ready
to splice into a frame, so neither a web process nor a connection serialises it again. Each process then builds
one frame prefix per message and appends the ``subs`` list per connection (cached per distinct list).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.timefmt import format_utc

#: The ``encoding`` a frame carries when its payload is base64 of bytes that are not UTF-8.
BASE64 = "base64"
OPS = ("subscribe", "unsubscribe", "publish", "ping")
#: Client frames larger than this are refused (a publish carries a small fact, not a file).
MAX_REQUEST_CHARS = 256 * 1024
#: The largest WebSocket message the server should read at all: MAX_REQUEST_CHARS in UTF-8's worst case. The
#: server buffers a whole message before the hub sees it, and uvicorn's own default (16 MiB) let one user's 20
#: sockets hold 720 MB at once; ``runhub`` and the production command pass this as ``ws_max_size`` (else 1009).
MAX_FRAME_BYTES = 4 * MAX_REQUEST_CHARS
#: What a subscription's filter costs per level beyond its text: the filter index keeps a node per level
#: (about 450 bytes measured), so ``/home////…`` with 60,000 levels held 27 MB while its text was 60 kB.
LEVEL_BYTES = 512


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def payload_json(payload: Any) -> tuple[str, bool]:
    """``payload`` as JSON text for a frame, and whether it is base64.

    bytes that are UTF-8 JSON → that JSON value; other UTF-8 → a string; anything else → base64 (flag True).
    Anything that is not bytes is a value already (a hub event's envelope or data) and is written as JSON.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        return _compact(payload), False
    data = bytes(payload)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _compact(base64.b64encode(data).decode("ascii")), True
    try:
        # Strict: NaN/Infinity and raw control characters are Python's extensions, not JSON a browser parses.
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return _compact(text), False
    # Valid JSON text is spliced as it came: no second serialisation, big numbers keep their digits.
    return text.strip(), False


def micros(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the epoch: the order key of retained values."""
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


@dataclass(frozen=True, slots=True)
class PushMessage:
    """A message on its way to browsers, payload already encoded.

    ``order`` (µs since the epoch: an event's ``occurred_at``, else when the hub received it) decides which of
    two retained values of one topic is the last one; ties go to the later arrival. ``retain`` asks that it be
    kept as the topic's last value; an empty retained payload clears it (MQTT's rule).
    """

    topic: str
    payload: str
    base64: bool
    ts: str
    order: int
    retain: bool = False
    #: An empty retained MQTT payload: delivered (as ``""``) and clears the topic's last value.
    clears: bool = False

    def frame_prefix(self, *, retained: bool) -> str:
        """The ``message`` frame up to its ``subs`` value; :func:`message_frame` completes it."""
        encoding = ',"encoding":"base64"' if self.base64 else ""
        return (
            f'{{"op":"message","topic":{_compact(self.topic)},"payload":{self.payload}{encoding},'
            f'"retained":{"true" if retained else "false"},"ts":"{self.ts}","subs":'
        )

    def to_wire(self) -> str:
        """One line of header, then the payload text: what travels between web processes (and is stored)."""
        header = _compact([self.topic, self.base64, self.ts, self.order, self.retain, self.clears])
        return f"{header}\n{self.payload}"

    @classmethod
    def from_wire(cls, wire: str | bytes) -> PushMessage:
        if isinstance(wire, bytes | bytearray):
            wire = wire.decode("utf-8")
        header, _, payload = wire.partition("\n")
        topic, is_base64, ts, order, retain, clears = json.loads(header)
        return cls(topic=topic, payload=payload, base64=is_base64, ts=ts, order=order, retain=retain, clears=clears)


def encode_message(
    topic: str,
    payload: Any,
    *,
    retain: bool = False,
    received_at: datetime | None = None,
    occurred_at: datetime | None = None,
) -> PushMessage:
    received_at = received_at or datetime.now(UTC)
    text, is_base64 = payload_json(payload)
    return PushMessage(
        topic=topic,
        payload=text,
        base64=is_base64,
        ts=format_utc(received_at),
        order=micros(occurred_at or received_at),
        retain=retain,
        clears=retain and isinstance(payload, bytes | bytearray | memoryview) and not payload,
    )


def message_frame(prefix: str, subs: list[Any]) -> str:
    return f"{prefix}{_compact(subs)}}}"


def subscription_bytes(topic_filter: str, subscription_id: Any) -> int:
    """What one subscription counts against ``PUSH_MAX_SUBSCRIPTION_BYTES``: its filter (UTF-8) and its id (as
    JSON, since every message frame repeats it), plus :data:`LEVEL_BYTES` per level of the filter."""
    levels = topic_filter.count("/") + 1
    return len(topic_filter.encode("utf-8", "surrogatepass")) + len(_compact(subscription_id)) + LEVEL_BYTES * levels


def frame_bytes(frame: str) -> int:
    """The memory a waiting frame takes (constant time): its length for ASCII text, up to 4 bytes per character
    beyond, plus Python's small header. Counted against ``PUSH_MAX_QUEUED_BYTES``."""
    return sys.getsizeof(frame)


def sort_ids(ids: list[Any]) -> list[Any]:
    return sorted(ids, key=lambda value: (isinstance(value, str), value))


# --- server → client frames besides messages -----------------------------------------------------------------


def ack_frame(request_id: Any) -> str:
    return _compact({"op": "ack", "id": request_id})


def error_frame(request_id: Any, message: str) -> str:
    return _compact({"op": "error", "id": request_id, "message": message})


def dropped_frame(subscription_id: Any, topic_filter: str) -> str:
    """A subscription the user's changed grants no longer cover, dropped by the hub: an ``error`` with the id the
    ``subscribe`` carried, naming the filter (also as ``topic``, for scripts)."""
    return _compact(
        {
            "op": "error",
            "id": subscription_id,
            "message": f"your grants changed: you may no longer subscribe to {topic_filter!r}, so it was dropped",
            "topic": topic_filter,
        }
    )


def pong_frame(request_id: Any) -> str:
    return _compact({"op": "pong", "id": request_id})


# --- client → server requests --------------------------------------------------------------------------------


class BadRequest(ValueError):
    """A client frame the hub cannot act on; answered with an ``error`` frame carrying ``request_id``."""

    def __init__(self, message: str, *, request_id: Any = None) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    op: str
    id: Any
    topic: str | None = None
    payload: Any = None
    retain: bool = False


def parse_request(text: str | bytes | None) -> Request:
    """A client frame as a :class:`Request`, or :class:`BadRequest` (``request_id`` None when unparseable)."""
    frame = _json_object(text)
    request_id = frame.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
        raise BadRequest("id must be a number or a string")
    op = frame.get("op")
    if op not in OPS:
        raise BadRequest(f"op must be one of {', '.join(OPS)}, not {op!r}", request_id=request_id)
    if op == "ping":
        return Request(op=op, id=request_id)
    if request_id is None:
        raise BadRequest(f"a {op} needs an id to answer to")
    topic = frame.get("topic")
    if not isinstance(topic, str):
        raise BadRequest(f"a {op} needs a topic (a string)", request_id=request_id)
    if op != "publish":
        return Request(op=op, id=request_id, topic=topic)
    retain = frame.get("retain", False)
    if not isinstance(retain, bool):
        raise BadRequest("retain must be true or false", request_id=request_id)
    payload = _publish_payload(frame, request_id)
    return Request(op=op, id=request_id, topic=topic, payload=payload, retain=retain)


def _json_object(text: str | bytes | None) -> dict:
    if text is None:
        raise BadRequest("frames are JSON text; binary frames are not understood")
    if len(text) > MAX_REQUEST_CHARS:
        raise BadRequest(f"a frame is at most {MAX_REQUEST_CHARS} characters")
    try:
        frame = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise BadRequest(f"not a JSON frame: {exc}") from None
    if not isinstance(frame, dict):
        raise BadRequest('a frame is a JSON object such as {"op": "ping", "id": 1}')
    return frame


def _publish_payload(frame: dict, request_id: Any) -> Any:
    """A publish's payload: JSON as it is, or the bytes of ``"encoding": "base64"``."""
    payload = frame.get("payload")
    encoding = frame.get("encoding")
    if encoding is None:
        return payload
    if encoding != BASE64 or not isinstance(payload, str):
        raise BadRequest('encoding must be "base64" with a string payload', request_id=request_id)
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:
        raise BadRequest("the payload is not valid base64", request_id=request_id) from None
