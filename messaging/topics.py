"""MQTT 3.1.1 topic names and topic filters (§4.7): validation, matching, and an index of filters.

Pure: no Django, no paho. The MQTT client, the bridge and the browser push all
use these rules, so a filter means the same thing at the broker, in a handler
registry and in a browser subscription.

* ``+`` matches exactly one level, including an empty one (``+/+`` matches ``/finance``).
* ``#`` matches the rest, including the parent level (``sport/#`` matches ``sport``).
* A filter starting with a wildcard does not match a topic starting with ``$`` (``#`` ignores ``$SYS/…``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from typing import Generic, TypeVar

MAX_LENGTH_BYTES = 65_535
SEPARATOR = "/"
SINGLE_LEVEL = "+"
MULTI_LEVEL = "#"

Subscriber = TypeVar("Subscriber", bound=Hashable)


class InvalidTopicError(ValueError):
    """A topic name or filter that MQTT 3.1.1 forbids; the message says which rule it breaks."""


def _validate_common(text: str, kind: str) -> None:
    if not isinstance(text, str):
        raise InvalidTopicError(f"a topic {kind} must be a string, not {type(text).__name__}")
    if text == "":
        raise InvalidTopicError(f"a topic {kind} must not be empty")
    if "\x00" in text:
        raise InvalidTopicError(f"a topic {kind} must not contain the NUL character")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidTopicError(f"a topic {kind} must be well-formed UTF-8 (it contains a lone surrogate)") from None
    if size > MAX_LENGTH_BYTES:
        raise InvalidTopicError(f"a topic {kind} is at most {MAX_LENGTH_BYTES} bytes of UTF-8, this one is {size}")


def validate_filter(topic_filter: str) -> str:
    """Return ``topic_filter`` unchanged, or raise :class:`InvalidTopicError` saying what is wrong with it."""
    _validate_common(topic_filter, "filter")
    levels = topic_filter.split(SEPARATOR)
    for position, level in enumerate(levels):
        if MULTI_LEVEL in level:
            if level != MULTI_LEVEL:
                raise InvalidTopicError(f"'#' must occupy a whole level in {topic_filter!r} (e.g. 'sport/#')")
            if position != len(levels) - 1:
                raise InvalidTopicError(f"'#' must be the last level of {topic_filter!r}")
        if SINGLE_LEVEL in level and level != SINGLE_LEVEL:
            raise InvalidTopicError(f"'+' must occupy a whole level in {topic_filter!r} (e.g. 'sport/+/player1')")
    return topic_filter


def validate_topic(topic: str) -> str:
    """Return ``topic`` unchanged, or raise :class:`InvalidTopicError`: a topic name has no wildcards."""
    _validate_common(topic, "name")
    if SINGLE_LEVEL in topic or MULTI_LEVEL in topic:
        raise InvalidTopicError(f"a topic name must not contain the wildcards '+' or '#': {topic!r}")
    return topic


def is_wildcard(topic_filter: str) -> bool:
    return SINGLE_LEVEL in topic_filter or MULTI_LEVEL in topic_filter


def _matches_levels(filter_levels: list[str], topic_levels: list[str]) -> bool:
    for position, level in enumerate(filter_levels):
        if level == MULTI_LEVEL:
            return True
        if position >= len(topic_levels):
            return False
        if level != SINGLE_LEVEL and level != topic_levels[position]:
            return False
    return len(filter_levels) == len(topic_levels)


def matches(topic_filter: str, topic: str) -> bool:
    """Whether the (valid) filter matches the (valid) topic name; invalid input raises :class:`InvalidTopicError`."""
    validate_filter(topic_filter)
    validate_topic(topic)
    if topic.startswith("$") and topic_filter[0] in (SINGLE_LEVEL, MULTI_LEVEL):
        return False
    # "sport/#" also matches "sport": the '#' level may match nothing at all, parent separator included.
    return _matches_levels(topic_filter.split(SEPARATOR), topic.split(SEPARATOR))


def covers(wider: str, narrower: str) -> bool:
    """Whether every topic ``narrower`` matches is also matched by ``wider`` (both valid filters).

    Lets a client subscribe at the broker to ``#`` alone instead of ``#`` and ``/home/#``,
    which a broker would answer with one copy of each message per overlapping subscription.
    Conservative: it may say False for an exotic equivalent pair (``+/#`` and ``#``), never True wrongly.
    """
    validate_filter(wider)
    validate_filter(narrower)
    if wider[0] in (SINGLE_LEVEL, MULTI_LEVEL) and narrower.startswith("$"):
        return False
    wide_levels = wider.split(SEPARATOR)
    narrow_levels = narrower.split(SEPARATOR)
    for position, level in enumerate(wide_levels):
        if level == MULTI_LEVEL:
            return True
        if position >= len(narrow_levels):
            return False
        narrow = narrow_levels[position]
        if narrow == MULTI_LEVEL:
            return False
        if level != SINGLE_LEVEL and level != narrow:
            return False
    # Without '#' the wider filter matches topics of exactly its own depth; so must the narrower one.
    return len(narrow_levels) == len(wide_levels)


def intersects(first: str, second: str) -> bool:
    """Whether some topic name matches both (valid) filters (``/+/measure/#`` and ``/events/#`` do)."""
    validate_filter(first)
    validate_filter(second)
    for one, other in ((first, second), (second, first)):
        if one[0] in (SINGLE_LEVEL, MULTI_LEVEL) and other.startswith("$"):
            return False
    first_levels, second_levels = first.split(SEPARATOR), second.split(SEPARATOR)
    for one, other in zip(first_levels, second_levels, strict=False):
        if MULTI_LEVEL in (one, other):
            return True
        if SINGLE_LEVEL not in (one, other) and one != other:
            return False
    longer = first_levels if len(first_levels) > len(second_levels) else second_levels
    # Equal depth matches; one level more matches only as '#', which also matches its parent.
    return len(first_levels) == len(second_levels) or longer[min(len(first_levels), len(second_levels))] == MULTI_LEVEL


def minimal_filters(filters: Iterable[str]) -> list[str]:
    """``filters`` without any filter another one covers (and without duplicates), in first-seen order."""
    unique = list(dict.fromkeys(filters))

    def redundant(index: int, candidate: str) -> bool:
        for other_index, other in enumerate(unique):
            if other_index == index or not covers(other, candidate):
                continue
            # Of two filters covering each other the earlier one stays.
            if not covers(candidate, other) or other_index < index:
                return True
        return False

    return [candidate for index, candidate in enumerate(unique) if not redundant(index, candidate)]


class _Node(Generic[Subscriber]):
    __slots__ = ("children", "subscribers")

    def __init__(self) -> None:
        self.children: dict[str, _Node[Subscriber]] = {}
        self.subscribers: set[Subscriber] = set()


class FilterIndex(Generic[Subscriber]):
    """Topic filters → the subscribers of each, as a trie of levels.

    Matching a topic walks at most three branches per level (the literal level, ``+``
    and ``#``), so its cost grows with the topic's depth and the number of matching
    filters, not with the number of filters held. Not thread-safe: use it from one
    thread (or one event loop).
    """

    def __init__(self) -> None:
        self._root: _Node[Subscriber] = _Node()
        self._filters: dict[str, int] = {}

    def add(self, topic_filter: str, subscriber: Subscriber) -> bool:
        """Subscribe ``subscriber`` to ``topic_filter``; True when the filter had no subscriber before."""
        validate_filter(topic_filter)
        node = self._root
        for level in topic_filter.split(SEPARATOR):
            node = node.children.setdefault(level, _Node())
        if subscriber in node.subscribers:
            return False
        node.subscribers.add(subscriber)
        count = self._filters.get(topic_filter, 0)
        self._filters[topic_filter] = count + 1
        return count == 0

    def remove(self, topic_filter: str, subscriber: Subscriber) -> bool:
        """Unsubscribe; True when that left the filter without subscribers. Unknown pairs are ignored."""
        if topic_filter not in self._filters:
            return False
        path: list[tuple[_Node[Subscriber], str]] = []
        node = self._root
        for level in topic_filter.split(SEPARATOR):
            path.append((node, level))
            node = node.children[level]
        if subscriber not in node.subscribers:
            return False
        node.subscribers.discard(subscriber)
        self._filters[topic_filter] -= 1
        if self._filters[topic_filter]:
            return False
        del self._filters[topic_filter]
        # Prune the branch so a long-lived index does not keep every filter it ever saw.
        for parent, level in reversed(path):
            child = parent.children[level]
            if child.subscribers or child.children:
                break
            del parent.children[level]
        return True

    def subscribers_of(self, topic_filter: str) -> frozenset[Subscriber]:
        node = self._root
        for level in topic_filter.split(SEPARATOR):
            node = node.children.get(level)
            if node is None:
                return frozenset()
        return frozenset(node.subscribers)

    def filters(self) -> list[str]:
        return list(self._filters)

    def __len__(self) -> int:
        return len(self._filters)

    def __contains__(self, topic_filter: object) -> bool:
        return topic_filter in self._filters

    def match(self, topic: str) -> set[Subscriber]:
        """Every subscriber of a filter that matches the topic name."""
        found: set[Subscriber] = set()
        for _filter, subscribers in self._walk(topic):
            found |= subscribers
        return found

    def match_filters(self, topic: str) -> dict[str, frozenset[Subscriber]]:
        """Each matching filter with its subscribers (e.g. to tell a browser which of its subscriptions matched)."""
        return {topic_filter: frozenset(subscribers) for topic_filter, subscribers in self._walk(topic)}

    def _walk(self, topic: str) -> Iterator[tuple[str, set[Subscriber]]]:
        validate_topic(topic)
        levels = topic.split(SEPARATOR)
        system_topic = topic.startswith("$")
        # Each entry: a node reached after consuming ``depth`` levels, and the filter levels that led there.
        stack: list[tuple[_Node[Subscriber], int, tuple[str, ...]]] = [(self._root, 0, ())]
        while stack:
            node, depth, path = stack.pop()
            wildcards_allowed = not (depth == 0 and system_topic)
            hash_child = node.children.get(MULTI_LEVEL) if wildcards_allowed else None
            if hash_child is not None and hash_child.subscribers:
                yield SEPARATOR.join((*path, MULTI_LEVEL)), hash_child.subscribers
            if depth == len(levels):
                if node.subscribers:
                    yield SEPARATOR.join(path), node.subscribers
                continue
            level = levels[depth]
            literal_child = node.children.get(level)
            if literal_child is not None:
                stack.append((literal_child, depth + 1, (*path, level)))
            plus_child = node.children.get(SINGLE_LEVEL) if wildcards_allowed else None
            if plus_child is not None:
                stack.append((plus_child, depth + 1, (*path, SINGLE_LEVEL)))
