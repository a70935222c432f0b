"""The event envelope and its AMQP form. Pure: no Django, no kombu.

On the wire an event is a JSON body ``{id, type, occurred_at, source, data}``
with ``id``, ``type`` and the time repeated as the AMQP ``message_id``, ``type``
and ``timestamp``, ``content_type`` ``application/json``, and the hub-only
routing facts (``topics``, ``retain``) in headers. A foreign producer's JSON
body without the envelope is accepted too (type = routing key). Nothing else
is ever decoded: pickle and other content types are refused, never loaded.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.timefmt import format_utc, parse_utc

CONTENT_TYPE = "application/json"
TOPICS_HEADER = "x-hub-topics"
RETAIN_HEADER = "x-hub-retain"
REASON_HEADER = "x-hub-dead-reason"
ENVELOPE_KEYS = frozenset({"id", "type", "occurred_at", "source", "data"})
#: Bodies larger than this are refused: an event is a small fact, not a file.
MAX_BODY_BYTES = 1024 * 1024
#: The ``source`` of an event that arrived from a foreign producer without one.
FOREIGN_SOURCE = "amqp"
#: Namespace for turning a foreign producer's non-UUID ``message_id`` into an event id (uuid5).
FOREIGN_ID_NAMESPACE = uuid.UUID("6f1c2a54-3c1e-4f7e-9d55-0b7a2e4c9a10")


class PoisonMessage(ValueError):
    """A message the hub can never store; ``str(exc)`` is the reason put in the dead-letter header."""


class InvalidEvent(ValueError):
    """An event the hub refuses to publish; raised to the caller of ``messaging.publish`` at once."""


@dataclass(frozen=True)
class Event:
    id: uuid.UUID
    type: str
    occurred_at: datetime
    source: str
    data: Any
    topics: tuple[str, ...] = field(default=())
    retain: bool = False

    def envelope(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "occurred_at": format_utc(self.occurred_at),
            "source": self.source,
            "data": self.data,
        }

    def body(self) -> bytes:
        return json.dumps(self.envelope(), separators=(",", ":"), ensure_ascii=False).encode()

    def amqp_properties(self) -> dict[str, Any]:
        """Keyword arguments for ``kombu.Producer.publish`` besides body, exchange and routing key."""
        return {
            "content_type": CONTENT_TYPE,
            "content_encoding": "utf-8",
            "message_id": str(self.id),
            "type": self.type,
            "timestamp": int(self.occurred_at.timestamp()),
            "headers": {TOPICS_HEADER: list(self.topics), RETAIN_HEADER: self.retain},
            "delivery_mode": 2,
        }


def new_event(
    type: str,
    data: Any,
    *,
    source: str,
    topics: Iterable[str] = (),
    retain: bool = False,
    occurred_at: datetime | None = None,
) -> Event:
    """A new event with a fresh id, checked so that every consumer can read it; raise :class:`InvalidEvent`.

    ``occurred_at`` defaults to now and is kept to the millisecond, the precision of the wire format, so the
    outbox row, the envelope and the stored event all agree on it.
    """
    if not isinstance(type, str) or not type.strip() or len(type) > 200:
        raise InvalidEvent(f"event type {type!r} is not a name of 1 to 200 characters")
    if not isinstance(source, str) or not source.strip() or len(source) > 200:
        raise InvalidEvent(f"source {source!r} is not a name of 1 to 200 characters")
    if isinstance(topics, str):
        raise InvalidEvent(f"topics must be a list of topic names, not the string {topics!r}")
    topics = tuple(topics)
    for topic in topics:
        if not isinstance(topic, str) or not topic or any(c in topic for c in "+#\0"):
            raise InvalidEvent(f"topic {topic!r} is not a topic name (non-empty, no wildcards)")
    if not isinstance(retain, bool):
        raise InvalidEvent(f"retain must be True or False, not {retain!r}")
    if occurred_at is None:
        occurred_at = datetime.now(UTC)
    elif not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise InvalidEvent(f"occurred_at {occurred_at!r} must be a timezone-aware datetime")
    occurred_at = occurred_at.astimezone(UTC)
    occurred_at = occurred_at.replace(microsecond=occurred_at.microsecond // 1000 * 1000)
    event = Event(
        id=uuid.uuid4(), type=type, occurred_at=occurred_at, source=source, data=data, topics=topics, retain=retain
    )
    try:
        # NaN and Infinity are not JSON: json.dumps would write them, every other reader would choke.
        size = len(json.dumps(event.envelope(), allow_nan=False, ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"data is not JSON-serialisable: {exc}") from None
    if size > MAX_BODY_BYTES:
        raise InvalidEvent(f"the event is {size} bytes as JSON, over the {MAX_BODY_BYTES}-byte limit")
    return event


def event_from_message(
    body: bytes | str,
    *,
    content_type: str | None,
    routing_key: str,
    message_id: str | None = None,
    timestamp: int | float | datetime | None = None,
    headers: dict[str, Any] | None = None,
    app_id: str | None = None,
) -> Event:
    """Read an event from an AMQP message; raise :class:`PoisonMessage` with the reason when it cannot be."""
    headers = headers or {}
    if content_type == "application/x-python-serialize":
        raise PoisonMessage("pickle payloads are refused: the hub never unpickles data from the wire")
    if content_type not in (CONTENT_TYPE, "application/json; charset=utf-8"):
        raise PoisonMessage(f"content type {content_type!r} is not application/json")
    if isinstance(body, str):
        # py-amqp hands over the body already decoded when the producer declared a text content_encoding.
        body = body.encode("utf-8", "surrogatepass")
    if not isinstance(body, bytes | bytearray | memoryview) or not body:
        raise PoisonMessage("empty body")
    if len(body) > MAX_BODY_BYTES:
        raise PoisonMessage(f"body of {len(body)} bytes is over the {MAX_BODY_BYTES}-byte limit")
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessage(f"body is not valid JSON: {exc}") from None

    topics = _topics(headers.get(TOPICS_HEADER))
    retain = bool(headers.get(RETAIN_HEADER, False))
    if isinstance(decoded, dict) and decoded.keys() >= ENVELOPE_KEYS:
        return Event(
            id=_uuid(decoded["id"], "envelope id"),
            type=_event_type(decoded["type"]),
            occurred_at=_time(decoded["occurred_at"]),
            source=_source(decoded["source"]),
            data=decoded["data"],
            topics=topics,
            retain=retain,
        )
    # A foreign producer (a plain kombu or pika script): the body is the data, the routing key the type.
    return Event(
        id=_foreign_id(message_id),
        type=_event_type(routing_key),
        occurred_at=_foreign_time(timestamp),
        source=_source(app_id) if app_id else FOREIGN_SOURCE,
        data=decoded,
        topics=topics,
        retain=retain,
    )


def _uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise PoisonMessage(f"{what} {value!r} is not a UUID") from None


def _foreign_id(message_id: str | None) -> uuid.UUID:
    """The AMQP ``message_id`` as the event id; a non-UUID id maps to a stable UUID so redeliveries still dedupe.

    Without a ``message_id`` every delivery gets a new id: such messages are stored at least once.
    """
    if not message_id:
        return uuid.uuid4()
    try:
        return uuid.UUID(str(message_id))
    except ValueError:
        return uuid.uuid5(FOREIGN_ID_NAMESPACE, str(message_id))


def _event_type(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise PoisonMessage(f"event type {value!r} is not a name of 1 to 200 characters")
    return value


def _source(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise PoisonMessage(f"source {value!r} is not a string of at most 200 characters")
    return value


def _time(value: Any) -> datetime:
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise PoisonMessage(f"occurred_at: {exc}") from None


def _foreign_time(timestamp: int | float | datetime | None) -> datetime:
    if isinstance(timestamp, datetime):
        return timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
    if isinstance(timestamp, int | float):
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            raise PoisonMessage(f"timestamp {timestamp!r} is out of range") from None
    return datetime.now(UTC)


def _topics(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) and t for t in value):
        raise PoisonMessage(f"{TOPICS_HEADER} header {value!r} is not a list of topic names")
    return tuple(value)
