"""Who may subscribe to and publish on which topics: per-group grants (``TopicGrant``), checked per request.

A subscription is allowed when one grant's filter covers it entirely (``/home/#`` allows ``/home/+/measure/#``,
not ``#``); a publish when a granted filter matches the topic, and an action topic
(``<MQTT_HOME_PREFIX>/<location>/action/<id>``, which switches hardware) also needs ``hub.send_commands``.
Superusers may do everything. Grants are read once per connection (:func:`grants_for`).
"""

from __future__ import annotations

from dataclasses import dataclass

from messaging.topics import covers, matches

SEND_COMMANDS = "hub.send_commands"


class PushRefused(PermissionError):
    """A request the user's grants do not allow; ``str(exc)`` is what the client is told."""


def is_action_topic(topic: str, *, home_prefix: str) -> bool:
    """``<home_prefix>/<location>/action/<id>`` (and anything below it): a topic that switches hardware."""
    if home_prefix:
        if not topic.startswith(f"{home_prefix}/"):
            return False
        topic = topic[len(home_prefix) + 1 :]
    levels = topic.split("/")
    return len(levels) >= 3 and levels[1] == "action"


@dataclass(frozen=True)
class Grants:
    subscribe: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    send_commands: bool = False
    home_prefix: str = "/home"
    #: A superuser: every filter and topic, ``$``-topics included.
    unrestricted: bool = False

    def check_subscribe(self, topic_filter: str) -> None:
        if self.unrestricted:
            return
        if not any(covers(granted, topic_filter) for granted in self.subscribe):
            raise PushRefused(f"you may not subscribe to {topic_filter!r}")

    def check_publish(self, topic: str) -> None:
        if self.unrestricted:
            return
        if not any(matches(granted, topic) for granted in self.publish):
            raise PushRefused(f"you may not publish to {topic!r}")
        if is_action_topic(topic, home_prefix=self.home_prefix) and not self.send_commands:
            raise PushRefused(f"{topic!r} is an action topic: publishing there needs the permission {SEND_COMMANDS}")


def grants_for(user) -> Grants:
    """The user's grants (database access: call through ``database_sync_to_async`` from async code)."""
    from django.conf import settings

    from messaging.models import TopicGrant

    home_prefix = settings.MQTT_HOME_PREFIX
    if user is None or not user.is_authenticated or not user.is_active:
        return Grants(home_prefix=home_prefix)
    if user.is_superuser:
        return Grants(send_commands=True, home_prefix=home_prefix, unrestricted=True)
    rows = TopicGrant.objects.filter(group__user=user).values_list("topic_filter", "may_subscribe", "may_publish")
    subscribe: dict[str, None] = {}
    publish: dict[str, None] = {}
    for topic_filter, may_subscribe, may_publish in rows:
        if may_subscribe:
            subscribe[topic_filter] = None
        if may_publish:
            publish[topic_filter] = None
    return Grants(
        subscribe=tuple(subscribe),
        publish=tuple(publish),
        send_commands=user.has_perm(SEND_COMMANDS),
        home_prefix=home_prefix,
    )
