"""Who may subscribe to and publish on what: the rules, the default grants, and their admin."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.models import Group, Permission, User

import messaging
from messaging.models import TopicGrant
from messaging.push.grants import Grants, PushRefused, grants_for
from messaging.topic_rules import expand_home, forget_publish_rule, publish_rules
from messaging.topics import intersects, matches

#: The levels of the rooms' set topics heating's migration grants to household and staff.
SET_LEVELS = ("target", "mode", "preset")


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


#: Every shape of MQTT_HOME_PREFIX: the default, empty (lagarto's exact ``/<location>/…``), several levels.
PREFIXES = ["/home", "", "/site/a/home"]
SEND_COMMANDS = frozenset({"hub.send_commands"})


@pytest.mark.parametrize("prefix", PREFIXES)
def test_without_send_commands_an_action_topic_is_refused_even_under_a_hash_publish_grant(prefix):
    # The rule is heating's (registered from HeatingConfig.ready), not written into messaging.
    grants = Grants(subscribe=("#",), publish=("#",), home_prefix=prefix)
    for topic in (f"{prefix}/kitchen/action/161.12.0", f"{prefix}/unassigned/action/5.12.1", f"{prefix}//action/1"):
        with pytest.raises(PushRefused, match=r"needs the permission hub\.send_commands"):
            grants.check_publish(topic)
    grants.check_publish(f"{prefix}/kitchen/measure/161.12.0")
    grants.check_publish("/news/europe/sport")
    with_permission = Grants(publish=("#",), permissions=SEND_COMMANDS, home_prefix=prefix)
    with_permission.check_publish(f"{prefix}/kitchen/action/161.12.0")


def test_the_empty_prefix_case_that_let_a_household_user_switch_a_heater():
    grants = Grants(publish=("#",), home_prefix="")
    with pytest.raises(PushRefused, match=r"hub\.send_commands"):
        grants.check_publish("/living/action/161.12.0")


def test_publishing_needs_a_publish_grant_first():
    with pytest.raises(PushRefused, match="may not publish"):
        Grants(subscribe=("#",), permissions=SEND_COMMANDS).check_publish("/home/kitchen/set")
    Grants(publish=("{home}/#",), home_prefix="/home").check_publish("/home/kitchen/set")
    with pytest.raises(PushRefused, match="may not publish"):
        Grants(publish=("{home}/#",), home_prefix="/site/a/home").check_publish("/home/kitchen/set")


def test_an_app_can_register_more_rules_and_each_needs_its_own_permission():
    # A topic no app of the hub claims, so forgetting the rule afterwards leaves the real ones alone.
    rule = messaging.require_publish_permission("{home}/+/chime/set", "heating.control", why="it rings a room")
    try:
        assert messaging.require_publish_permission("{home}/+/chime/set", "heating.control", why="it rings a room")
        assert publish_rules().count(rule) == 1, "registering the same rule twice keeps one"
        for prefix in PREFIXES:
            topic = f"{prefix}/living/chime/set"
            with pytest.raises(PushRefused, match=r"heating\.control \(it rings a room\)"):
                Grants(publish=("#",), permissions=SEND_COMMANDS, home_prefix=prefix).check_publish(topic)
            Grants(publish=("#",), permissions=frozenset({"heating.control"}), home_prefix=prefix).check_publish(topic)
    finally:
        forget_publish_rule(rule)
    Grants(publish=("#",)).check_publish("/home/living/chime/set")


@pytest.mark.parametrize(
    ("topic_filter", "permission", "error"),
    [
        ("/a/{home}/#", "hub.send_commands", "may only open a filter"),
        ("{home}x/#", "hub.send_commands", "may only open a filter"),
        ("{home}/#/x", "hub.send_commands", "must be the last level"),
        ("{home}/+/action/#", "send_commands", "app_label.codename"),
        ("{home}/+/action/#", "a.b.c", "app_label.codename"),
    ],
)
def test_a_malformed_rule_is_refused_when_registered(topic_filter, permission, error):
    with pytest.raises(ValueError, match=error):
        messaging.require_publish_permission(topic_filter, permission)


@pytest.mark.parametrize(
    ("prefix", "expanded"),
    [("/home", "/home/#"), ("", "/#"), ("/site/a/home", "/site/a/home/#")],
)
def test_home_expands_to_the_prefix(prefix, expanded):
    assert expand_home("{home}/#", home_prefix=prefix) == expanded
    assert expand_home("/events/heating/#", home_prefix=prefix) == "/events/heating/#"
    assert expand_home("{home}", home_prefix=prefix) == (prefix or None)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_stored_home_grant_follows_the_prefix_for_subscriptions(prefix):
    grants = Grants(subscribe=("{home}/#", "/events/heating/#"), home_prefix=prefix)
    for allowed in (f"{prefix}/living/#", f"{prefix}/living/measure/161.11.0", "/events/heating/#"):
        grants.check_subscribe(allowed)
    for refused in ("#", "+/#", "/events/#", "/events/downloads/served", "$SYS/#"):
        with pytest.raises(PushRefused, match="may not subscribe"):
            grants.check_subscribe(refused)
    if prefix:
        grants.check_subscribe(f"{prefix}/#")
        grants.check_subscribe(f"{prefix}/+/measure/#")
        with pytest.raises(PushRefused, match="may not subscribe"):
            grants.check_subscribe("/elsewhere/#")


def test_under_an_empty_prefix_the_house_grant_stops_at_the_hubs_events():
    """The house is then '/#', which would also cover /events/downloads/… (customers' names): it must not."""
    grants = Grants(subscribe=("{home}/#",), publish=("{home}/#",), home_prefix="")
    grants.check_subscribe("/living/#")
    grants.check_subscribe("/living/+/161.11.0")
    for reaching_events in ("/#", "/+/measure/#", "/events/downloads/#", "/+/downloads/served"):
        with pytest.raises(PushRefused, match="may not subscribe"):
            grants.check_subscribe(reaching_events)
    grants.check_publish("/living/measure/161.11.0")
    with pytest.raises(PushRefused, match="may not publish"):
        grants.check_publish("/events/heating/reading")
    from messaging.push.notifier import events_topic
    from messaging.topic_rules import HUB_EVENTS_TREE

    assert matches(HUB_EVENTS_TREE, events_topic("downloads.served")), "the tree kept out is where events go"
    # A literal grant an admin writes is taken as written.
    Grants(subscribe=("/+/measure/#",), home_prefix="").check_subscribe("/+/measure/#")


@pytest.mark.parametrize(
    ("first", "second", "common"),
    [
        ("/+/measure/#", "/events/#", True),
        ("/living/#", "/events/#", False),
        ("/#", "/events/#", True),
        ("a/#", "a", True),
        ("a/+", "a", False),
        ("+/b", "a/+", True),
        ("a/b/c", "a/+", False),
        ("#", "$SYS/x", False),
    ],
)
def test_whether_two_filters_share_a_topic(first, second, common):
    assert intersects(first, second) is common
    assert intersects(second, first) is common


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_default_grants_from_the_migration():
    rows = {
        (grant.group.name, grant.topic_filter, grant.may_subscribe, grant.may_publish)
        for grant in TopicGrant.objects.select_related("group")
    }
    assert rows == {
        ("household", "{home}/#", True, False),
        ("household", "/events/heating/#", True, False),
        ("staff", "#", True, True),
        # The rooms' set topics (heating's migration): publishing there also needs heating.control.
        *{(group, f"{{home}}/+/{what}/set", True, True) for group in ("household", "staff") for what in SET_LEVELS},
    }


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_users_grants_come_from_all_their_groups_and_an_inactive_user_has_none():
    household, staff = Group.objects.get(name="household"), Group.objects.get(name="staff")
    both = User.objects.create_user("erin")
    both.groups.add(household, staff)
    both.user_permissions.add(Permission.objects.get(codename="send_commands"))
    grants = grants_for(User.objects.get(pk=both.pk))
    assert set(grants.subscribe) == {"{home}/#", "/events/heating/#", "#", *(f"{{home}}/+/{w}/set" for w in SET_LEVELS)}
    assert set(grants.publish) == {"#", *(f"{{home}}/+/{what}/set" for what in SET_LEVELS)}
    assert "hub.send_commands" in grants.permissions
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
    misplaced = client.post(
        "/admin/messaging/topicgrant/add/",
        {"group": household.pk, "topic_filter": "/x/{home}/#", "may_subscribe": "on"},
    )
    assert "may only open a filter" in misplaced.content.decode()
    following = client.post(
        "/admin/messaging/topicgrant/add/",
        {"group": household.pk, "topic_filter": "{home}/+/measure/#", "may_subscribe": "on"},
    )
    assert following.status_code == 302


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("prefix", PREFIXES)
def test_household_sees_its_own_house_under_every_prefix_and_switches_nothing(settings, prefix):
    settings.MQTT_HOME_PREFIX = prefix
    member = User.objects.create_user("hana")
    member.groups.add(Group.objects.get(name="household"))
    grants = grants_for(User.objects.get(pk=member.pk))
    grants.check_subscribe(f"{prefix}/living/#")
    grants.check_subscribe(f"{prefix}/living/measure/161.11.0")
    grants.check_subscribe("/events/heating/#")
    with pytest.raises(PushRefused, match="may not subscribe"):
        grants.check_subscribe("#")
    with pytest.raises(PushRefused):
        grants.check_publish(f"{prefix}/living/action/161.12.0")
    # An admin opens publishing on the whole tree to the household: action topics stay shut without the permission.
    TopicGrant.objects.create(group=Group.objects.get(name="household"), topic_filter="#", may_publish=True)
    grants = grants_for(User.objects.get(pk=member.pk))
    grants.check_publish(f"{prefix}/living/measure/161.11.0")
    with pytest.raises(PushRefused, match=r"hub\.send_commands"):
        grants.check_publish(f"{prefix}/living/action/161.12.0")
    member.user_permissions.add(Permission.objects.get(codename="send_commands", content_type__app_label="hub"))
    grants_for(User.objects.get(pk=member.pk)).check_publish(f"{prefix}/living/action/161.12.0")


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_migration_turns_literal_home_grants_into_grants_that_follow_the_prefix():
    from django.apps import apps

    migration = importlib.import_module("messaging.migrations.0004_topic_grants_follow_home_prefix")
    TopicGrant.objects.all().delete()
    old = Group.objects.create(name="old-install")
    both = Group.objects.create(name="both")
    TopicGrant.objects.create(group=old, topic_filter="/home/#")
    TopicGrant.objects.create(group=old, topic_filter="/home/kitchen/#")  # an admin's own: left as written
    TopicGrant.objects.create(group=both, topic_filter="/home/#", may_subscribe=False, may_publish=True)
    TopicGrant.objects.create(group=both, topic_filter="{home}/#", may_subscribe=True, may_publish=False)

    migration.follow_prefix(apps, None)

    rows = {(g.group.name, g.topic_filter, g.may_subscribe, g.may_publish) for g in TopicGrant.objects.all()}
    assert rows == {
        ("old-install", "{home}/#", True, False),
        ("old-install", "/home/kitchen/#", True, False),
        ("both", "{home}/#", True, True),
    }
    migration.back_to_literal(apps, None)
    assert set(TopicGrant.objects.values_list("topic_filter", flat=True)) == {"/home/#", "/home/kitchen/#"}
