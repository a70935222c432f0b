"""Rooms from the locations nodes already have; who may control them.

* A room for each distinct non-empty node location (name = the location, no heaters until staff choose them).
  Nodes without a location stay unassigned. A location that is not a valid room id (a reserved word) gets none.
* ``heating.control`` (change targets, modes, boosts and schedules) for ``household`` and ``staff``.
* Both groups may publish on the rooms' set topics: ``{home}/+/target/set``, ``{home}/+/mode/set`` and
  ``{home}/+/preset/set`` (``{home}`` is MQTT_HOME_PREFIX, expanded when a grant is checked).
"""

import re

from django.db import migrations

GROUPS = ("household", "staff")
SET_TOPICS = ("{home}/+/target/set", "{home}/+/mode/set", "{home}/+/preset/set")
SLUG = re.compile(r"^[a-z0-9_-]{1,64}$")
RESERVED = {"count", "search", "schema", "docs", "unassigned", "events", "homeassistant", "hub"}


def rooms_from_locations(apps, schema_editor):
    Node = apps.get_model("heating", "Node")
    Room = apps.get_model("heating", "Room")
    locations = sorted(set(Node.objects.exclude(location="").values_list("location", flat=True)))
    for position, location in enumerate(locations):
        if SLUG.match(location) and location not in RESERVED:
            Room.objects.get_or_create(slug=location, defaults={"name": location, "position": position})


def grant_control(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    TopicGrant = apps.get_model("messaging", "TopicGrant")
    content_type, _ = ContentType.objects.get_or_create(app_label="heating", model="room")
    control, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename="control",
        defaults={"name": "Can change rooms' targets, modes, boosts and schedules"},
    )
    for name in GROUPS:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(control)
        for topic_filter in SET_TOPICS:
            grant, created = TopicGrant.objects.get_or_create(
                group=group, topic_filter=topic_filter, defaults={"may_subscribe": True, "may_publish": True}
            )
            if not created and not grant.may_publish:
                grant.may_publish = True
                grant.save(update_fields=["may_publish"])


def revoke_control(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    TopicGrant = apps.get_model("messaging", "TopicGrant")
    TopicGrant.objects.filter(group__name__in=GROUPS, topic_filter__in=SET_TOPICS).delete()
    control = Permission.objects.filter(content_type__app_label="heating", codename="control").first()
    if control is not None:
        for group in apps.get_model("auth", "Group").objects.filter(name__in=GROUPS):
            group.permissions.remove(control)


class Migration(migrations.Migration):
    dependencies = [
        ("heating", "0003_rooms"),
        ("messaging", "0004_topic_grants_follow_home_prefix"),
        ("hub", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(rooms_from_locations, migrations.RunPython.noop),
        migrations.RunPython(grant_control, revoke_control),
    ]
