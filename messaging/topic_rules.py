"""The house prefix placeholder and the rules "publishing on this topic needs that permission".

Pure: no Django, no paho. ``messaging`` knows nothing of the house's topic layout; the app that owns a topic
registers what publishing there needs (heating, from ``AppConfig.ready``)::

    import messaging

    messaging.require_publish_permission("{home}/+/action/#", "hub.send_commands", why="it switches hardware")

``{home}`` stands for ``MQTT_HOME_PREFIX`` and is expanded each time a rule or a topic grant is checked, so one
rule (or one stored grant, e.g. ``{home}/#``) means the house's topics whatever the prefix: ``/home`` (the
default), empty (lagarto's exact ``/<location>/…``) or several levels (``/site/a/home``). Under an empty
prefix the house is every topic starting with ``/`` except the hub's own :data:`HUB_EVENTS_TREE`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from messaging.topics import InvalidTopicError, matches, validate_filter

HOME = "{home}"
#: The hub's own tree (``/events/<type>``, see ``messaging.push.notifier``): never part of the house, so a ``{home}``
#: grant never reaches it, even when an empty prefix makes the house ``/#``.
HUB_EVENTS_TREE = "/events/#"
#: Any prefix with a leading slash stands in for the real one when a filter with ``{home}`` is validated.
_SAMPLE_PREFIX = "/home"


def expand_home(topic_filter: str, *, home_prefix: str) -> str | None:
    """``topic_filter`` with a leading ``{home}`` replaced by ``home_prefix``.

    ``None`` when nothing is left: ``{home}`` alone under an empty prefix names no topic at all.
    """
    if topic_filter == HOME:
        return home_prefix or None
    if topic_filter.startswith(f"{HOME}/"):
        return home_prefix + topic_filter[len(HOME) :]
    return topic_filter


def validate_grant_filter(topic_filter: str) -> str:
    """A topic filter that may start with ``{home}`` (as its own level); else :class:`InvalidTopicError`."""
    if not isinstance(topic_filter, str):
        raise InvalidTopicError(f"a topic filter must be a string, not {type(topic_filter).__name__}")
    if HOME in topic_filter:
        if not (topic_filter == HOME or topic_filter.startswith(f"{HOME}/")) or topic_filter.count(HOME) > 1:
            raise InvalidTopicError(
                f"{HOME} stands for MQTT_HOME_PREFIX and may only open a filter, as its own level "
                f"(e.g. {HOME}/#), not {topic_filter!r}"
            )
        validate_filter(expand_home(topic_filter, home_prefix=_SAMPLE_PREFIX))
        return topic_filter
    return validate_filter(topic_filter)


@dataclass(frozen=True)
class PublishRule:
    """Publishing on a topic ``topic_filter`` matches (after ``{home}`` is expanded) needs ``permission``."""

    topic_filter: str
    permission: str
    #: Said to the client that is refused (e.g. "it switches hardware").
    why: str = ""

    def applies_to(self, topic: str, *, home_prefix: str) -> bool:
        expanded = expand_home(self.topic_filter, home_prefix=home_prefix)
        return expanded is not None and matches(expanded, topic)


_lock = threading.Lock()
_rules: list[PublishRule] = []


def require_publish_permission(topic_filter: str, permission: str, *, why: str = "") -> PublishRule:
    """Register a rule: a browser (or anything acting for a user) publishing on a matching topic needs
    ``permission`` (Django's ``app_label.codename``) besides a publish grant. Registering the same rule again
    changes nothing. A filter should cover every topic the app's MQTT handler for it acts on (end it in ``#``)."""
    validate_grant_filter(topic_filter)
    app_label, dot, codename = permission.partition(".")
    if not (app_label and dot and codename) or "." in codename:
        raise ValueError(f"a permission is 'app_label.codename' (e.g. hub.send_commands), not {permission!r}")
    rule = PublishRule(topic_filter, permission, why)
    with _lock:
        if rule not in _rules:
            _rules.append(rule)
    return rule


def publish_rules() -> tuple[PublishRule, ...]:
    with _lock:
        return tuple(_rules)


def forget_publish_rule(rule: PublishRule) -> None:
    """Remove a registered rule (tests that register their own)."""
    with _lock:
        if rule in _rules:
            _rules.remove(rule)


def rules_for(topic: str, *, home_prefix: str, rules: tuple[PublishRule, ...] | None = None) -> list[PublishRule]:
    """The rules that apply to publishing on ``topic`` (the registered ones unless ``rules`` is given)."""
    return [
        rule
        for rule in (publish_rules() if rules is None else rules)
        if rule.applies_to(topic, home_prefix=home_prefix)
    ]
