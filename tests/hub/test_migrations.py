"""The first migration's groups and permission, on SQLite and again on PostgreSQL (``make test``'s second run)."""

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_the_first_migration_creates_the_groups_every_rule_refers_to():
    assert set(Group.objects.values_list("name", flat=True)) >= {"household", "staff"}


def test_send_commands_permission_exists_and_staff_has_it():
    permission = Permission.objects.get(content_type__app_label="hub", codename="send_commands")
    assert Group.objects.get(name="staff").permissions.filter(pk=permission.pk).exists()
    assert not Group.objects.get(name="household").permissions.filter(pk=permission.pk).exists()


def test_a_household_member_does_not_get_to_send_commands_but_staff_does():
    alice = User.objects.create_user("alice", password="x")
    alice.groups.add(Group.objects.get(name="household"))
    bob = User.objects.create_user("bob", password="x")
    bob.groups.add(Group.objects.get(name="staff"))
    assert not alice.has_perm("hub.send_commands")
    assert bob.has_perm("hub.send_commands")


def test_no_model_change_lacks_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
