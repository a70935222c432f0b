"""Who may subscribe to and publish on which topics: per-group grants (``TopicGrant``), checked per request.

A subscription is allowed when one grant's filter covers it entirely (``/home/#`` allows ``/home/+/measure/#``,
not ``#``); a publish when a granted filter matches the topic and the user holds every permission the apps
registered for that topic (``messaging.require_publish_permission``: heating makes its action topics need
``hub.send_commands``). A grant may start with ``{home}``, expanded with ``MQTT_HOME_PREFIX`` when checked; such a
house grant never reaches the hub's ``/events/…`` tree (under an empty prefix the house would be ``/#``).
Superusers may do everything. Grants are read when a connection opens (:func:`grants_for`) and again, for the
users it names, on each grants notice (``messaging.push.grant_notices``: a change in the admin reaches open sockets).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from messaging.topic_rules import HOME, HUB_EVENTS_TREE, PublishRule, expand_home, rules_for
from messaging.topics import covers, intersects, matches


class PushRefused(PermissionError):
    """A request the user's grants do not allow; ``str(exc)`` is what the client is told."""


def _expanded(filters: tuple[str, ...], home_prefix: str) -> tuple[tuple[str, bool], ...]:
    """Each granted filter with ``{home}`` expanded, and whether it names the house (it had ``{home}``)."""
    expanded = []
    for topic_filter in filters:
        house = topic_filter.startswith(HOME)
        topic_filter = expand_home(topic_filter, home_prefix=home_prefix)
        if topic_filter is not None:
            expanded.append((topic_filter, house))
    return tuple(expanded)


@dataclass(frozen=True)
class Grants:
    #: Granted filters as stored (``{home}`` not yet expanded).
    subscribe: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    #: The user's Django permissions, ``app_label.codename``.
    permissions: frozenset[str] = frozenset()
    home_prefix: str = "/home"
    #: A superuser: every filter and topic, ``$``-topics included, every permission.
    unrestricted: bool = False
    #: The publish rules to apply; ``None``: those the apps registered (checked at each publish).
    rules: tuple[PublishRule, ...] | None = None

    @cached_property
    def _subscribe_filters(self) -> tuple[tuple[str, bool], ...]:
        return _expanded(self.subscribe, self.home_prefix)

    @cached_property
    def _publish_filters(self) -> tuple[tuple[str, bool], ...]:
        return _expanded(self.publish, self.home_prefix)

    def has_permission(self, permission: str) -> bool:
        return self.unrestricted or permission in self.permissions

    def check_subscribe(self, topic_filter: str) -> None:
        if self.unrestricted:
            return
        # A house grant stops at the hub's events tree: under an empty prefix '/#' would otherwise reach every event.
        if not any(
            covers(granted, topic_filter) and not (house and intersects(topic_filter, HUB_EVENTS_TREE))
            for granted, house in self._subscribe_filters
        ):
            raise PushRefused(f"you may not subscribe to {topic_filter!r}")

    def check_publish(self, topic: str) -> None:
        if self.unrestricted:
            return
        if not any(
            matches(granted, topic) and not (house and matches(HUB_EVENTS_TREE, topic))
            for granted, house in self._publish_filters
        ):
            raise PushRefused(f"you may not publish to {topic!r}")
        for rule in rules_for(topic, home_prefix=self.home_prefix, rules=self.rules):
            if not self.has_permission(rule.permission):
                because = f" ({rule.why})" if rule.why else ""
                raise PushRefused(f"publishing to {topic!r} needs the permission {rule.permission}{because}")


def grants_for(user) -> Grants:
    """The user's grants (database access: call through ``database_sync_to_async`` from async code)."""
    from django.conf import settings

    from messaging.models import TopicGrant

    home_prefix = settings.MQTT_HOME_PREFIX
    if user is None or not user.is_authenticated or not user.is_active:
        return Grants(home_prefix=home_prefix)
    if user.is_superuser:
        return Grants(home_prefix=home_prefix, unrestricted=True)
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
        permissions=frozenset(user.get_all_permissions()),
        home_prefix=home_prefix,
    )


def grants_reload(user_key) -> Grants | None:
    """The grants of the user with primary key ``user_key`` read afresh; ``None`` when the user is gone or disabled
    (database access: call through ``database_sync_to_async``)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=user_key).first()
    if user is None or not user.is_active:
        return None
    return grants_for(user)
