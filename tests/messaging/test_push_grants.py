"""Who may subscribe to and publish on what: the rules, the default grants, and their admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User

from messaging.models import TopicGrant
from messaging.push.grants import Grants, PushRefused, grants_for, is_action_topic


def test_a_subscription_must_lie_entirely_inside_a_granted_filter():
    grants = Grants(subscribe=("/home/#", "/events/heating/#"))
    for allowed in ("/home/#", "/home", "/home/+/measure/#", "/home/kitchen/measure/1", "/events/heating/reading"):
        grants.check_subscribe(allowed)
    for refused in ("#", "+/home/#", "/events/#", "/events/+/reading", "/homework", "$SYS/#"):
        with pytest.raises(PushRefused, match="may not subscribe"):
            grants.check_subscribe(refused)


def test_everything_for_staff_still_leaves_dollar_topics_out_but_a_superuser_may():
    with pytest.raises(PushRefused):
        Grants(subscribe=("#",)).check_subscribe("$SYS/#")
    Grants(unrestricted=True).check_subscribe("$SYS/#")
    Grants(unrestricted=True).check_publish("/home/kitchen/action/1.12.0")


@pytest.mark.parametrize(
    ("topic", "prefix", "action"),
    [
        ("/home/kitchen/action/1.12.0", "/home", True),
        ("/home/unassigned/action/5.12.1", "/home", True),
        ("/home/kitchen/measure/1.12.0", "/home", False),
        ("/other/kitchen/action/1.12.0", "/home", False),
        ("/home/action", "/home", False),
        ("kitchen/action/1.12.0", "", True),
        ("/kitchen/action/1", "", False),
    ],
)
def test_action_topics(topic, prefix, action):
    assert is_action_topic(topic, home_prefix=prefix) is action


def test_publishing_needs_a_publish_grant_and_an_action_topic_the_permission():
    with pytest.raises(PushRefused, match="may not publish"):
        Grants(subscribe=("#",)).check_publish("/home/kitchen/set")
    grants = Grants(publish=("/home/#",), home_prefix="/home")
    grants.check_publish("/home/kitchen/set")
    with pytest.raises(PushRefused, match=r"hub\.send_commands"):
        grants.check_publish("/home/kitchen/action/1.12.0")
    Grants(publish=("/home/#",), send_commands=True).check_publish("/home/kitchen/action/1.12.0")


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_default_grants_from_the_migration():
    rows = {
        (grant.group.name, grant.topic_filter, grant.may_subscribe, grant.may_publish)
        for grant in TopicGrant.objects.select_related("group")
    }
    assert rows == {
        ("household", "/home/#", True, False),
        ("household", "/events/heating/#", True, False),
        ("staff", "#", True, True),
    }


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_users_grants_come_from_all_their_groups_and_an_inactive_user_has_none():
    household, staff = Group.objects.get(name="household"), Group.objects.get(name="staff")
    both = User.objects.create_user("erin")
    both.groups.add(household, staff)
    both.user_permissions.add(Permission.objects.get(codename="send_commands"))
    grants = grants_for(User.objects.get(pk=both.pk))
    assert set(grants.subscribe) == {"/home/#", "/events/heating/#", "#"}
    assert grants.publish == ("#",)
    assert grants.send_commands
    nobody = User.objects.create_user("frank")
    assert grants_for(nobody) == Grants(home_prefix=grants.home_prefix)
    both.is_active = False
    both.save()
    assert grants_for(User.objects.get(pk=both.pk)).subscribe == ()


@pytest.mark.postgres
@pytest.mark.django_db
def test_grants_are_managed_in_the_admin_and_a_malformed_filter_is_refused(client):
    client.force_login(User.objects.create_superuser("root", password="plum-orchard-velvet-42"))
    listing = client.get("/admin/messaging/topicgrant/")
    assert listing.status_code == 200
    assert "/events/heating/#" in listing.content.decode()
    household = Group.objects.get(name="household")
    refused = client.post(
        "/admin/messaging/topicgrant/add/",
        {"group": household.pk, "topic_filter": "/home/#/kitchen", "may_subscribe": "on"},
    )
    assert refused.status_code == 200
    assert "must be the last level" in refused.content.decode()
    added = client.post(
        "/admin/messaging/topicgrant/add/",
        {"group": household.pk, "topic_filter": "/news/+/sport", "may_subscribe": "on", "may_publish": "on"},
    )
    assert added.status_code == 302
    grant = TopicGrant.objects.get(topic_filter="/news/+/sport")
    assert (grant.group, grant.may_subscribe, grant.may_publish) == (household, True, True)
