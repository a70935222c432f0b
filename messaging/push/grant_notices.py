"""Grant changes reach open ``/ws/push`` sockets: every change that can alter what a user may do on the socket
sends one notice on the push bus once its transaction commits (:func:`messaging.push.announce_grants_changed`).

What counts: a topic grant saved or deleted, a group deleted, a group's permissions, a user's groups or own
permissions changed (from either side of the relation), a user saved (the active and superuser flags) or deleted.
The notice names the users concerned, computed from the relation that changed; each web process re-reads the
grants of those of them it has sockets for. Signals, not service calls, because these changes are made by
Django's admin (and ``createsuperuser``, the shell …), which calls no service of ours: the signal is the one
place every such change passes. The notice is the whole of it: which subscriptions stay is decided by the socket
against the grants read afresh (``messaging.consumers.PushConsumer.grants_changed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from messaging.models import TopicGrant

#: The fields of a user whose change alters what the user may do (a save naming only others, e.g. ``last_login``
#: at each sign-in, sends nothing).
USER_FIELDS = frozenset({"is_active", "is_superuser"})
#: Where the instance keeps the users it had before a ``clear`` or a delete, which cannot be read afterwards.
_BEFORE = "_push_grant_users_before"


def _announce(users: Iterable[Any] | None) -> None:
    """One notice once the change commits (at once outside a transaction); none for a rolled-back change."""
    from messaging import push

    users = None if users is None else list(users)
    transaction.on_commit(lambda: push.announce_grants_changed(users))


def _members(group_ids: Iterable[Any]) -> list[Any]:
    return list(get_user_model().objects.filter(groups__in=list(group_ids)).values_list("pk", flat=True).distinct())


def _grant_before_save(sender, instance: TopicGrant, **kwargs) -> None:
    # A grant moved to another group changes the old group's members too.
    if instance.pk is not None:
        setattr(instance, _BEFORE, list(TopicGrant.objects.filter(pk=instance.pk).values_list("group_id", flat=True)))


def _grant_saved(sender, instance: TopicGrant, **kwargs) -> None:
    _announce(_members({instance.group_id, *getattr(instance, _BEFORE, ())}))


def _grant_deleted(sender, instance: TopicGrant, **kwargs) -> None:
    _announce(_members([instance.group_id]))


def _group_before_delete(sender, instance: Group, **kwargs) -> None:
    setattr(instance, _BEFORE, _members([instance.pk]))


def _group_deleted(sender, instance: Group, **kwargs) -> None:
    _announce(getattr(instance, _BEFORE, None))


def _user_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    if created or (update_fields is not None and not USER_FIELDS & set(update_fields)):
        return
    _announce([instance.pk])


def _user_deleted(sender, instance, **kwargs) -> None:
    _announce([instance.pk])


def _relation_changed(users_of):
    """An ``m2m_changed`` receiver for a relation whose one side is users, or groups (``users_of`` maps the
    group side's ids to their members)."""

    def receiver(sender, instance, action: str, reverse: bool, model, pk_set, **kwargs) -> None:
        if action == "pre_clear":
            # After the clear the relation no longer tells whom it concerned.
            setattr(instance, _BEFORE, users_of(instance, None))
            return
        if action == "post_clear":
            _announce(getattr(instance, _BEFORE, None))
            return
        if action in ("post_add", "post_remove") and pk_set:
            _announce(users_of(instance, pk_set))

    return receiver


def _users_of_user_relation(instance, pk_set) -> list[Any]:
    """User.groups / User.user_permissions: the user, or (from the other side) the users added or removed."""
    user_model = get_user_model()
    if isinstance(instance, user_model):
        return [instance.pk]
    if pk_set is not None:
        return list(pk_set)
    # A group's or a permission's whole user set cleared: its users as they were.
    return list(instance.user_set.values_list("pk", flat=True))


def _users_of_group_permissions(instance, pk_set) -> list[Any]:
    """Group.permissions: the group's members, or (from a permission's side) the members of the groups."""
    if isinstance(instance, Group):
        return _members([instance.pk])
    if pk_set is not None:
        return _members(pk_set)
    assert isinstance(instance, Permission)
    return _members(instance.group_set.values_list("pk", flat=True))


# Module-level: signals hold their receivers weakly, so a receiver made by a factory must be kept somewhere.
_user_relation_changed = _relation_changed(_users_of_user_relation)
_group_permissions_changed = _relation_changed(_users_of_group_permissions)


def connect() -> None:
    """Connect the receivers (``MessagingConfig.ready``); idempotent through ``dispatch_uid``."""
    user_model = get_user_model()
    pre_save.connect(_grant_before_save, sender=TopicGrant, dispatch_uid="push-grant-before-save")
    post_save.connect(_grant_saved, sender=TopicGrant, dispatch_uid="push-grant-saved")
    post_delete.connect(_grant_deleted, sender=TopicGrant, dispatch_uid="push-grant-deleted")
    pre_delete.connect(_group_before_delete, sender=Group, dispatch_uid="push-group-before-delete")
    post_delete.connect(_group_deleted, sender=Group, dispatch_uid="push-group-deleted")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="push-user-saved")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="push-user-deleted")
    m2m_changed.connect(_user_relation_changed, sender=user_model.groups.through, dispatch_uid="push-user-groups")
    m2m_changed.connect(
        _user_relation_changed, sender=user_model.user_permissions.through, dispatch_uid="push-user-permissions"
    )
    m2m_changed.connect(
        _group_permissions_changed, sender=Group.permissions.through, dispatch_uid="push-group-permissions"
    )
