"""The rooms migration: rooms from the locations nodes already have, and who may control them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from messaging.models import TopicGrant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BEFORE = [("heating", "0002_node_signal_history")]
AFTER = [("heating", "0004_rooms_from_locations_and_control")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_each_distinct_location_becomes_a_room_and_unlocated_nodes_stay_unassigned():
    old_apps = _migrate(BEFORE)
    node_model = old_apps.get_model("heating", "Node")
    for address, location in [(0xA1, "living"), (0xA2, "living"), (0xA3, "bedroom"), (0xA4, ""), (0xA5, "hub")]:
        node_model.objects.create(address=address, key=f"{address:02x}", location=location)
    try:
        new_apps = _migrate(AFTER)
        rooms = new_apps.get_model("heating", "Room").objects.order_by("slug")
        assert [(room.slug, room.name) for room in rooms] == [("bedroom", "bedroom"), ("living", "living")]
        assert not new_apps.get_model("heating", "RoomHeater").objects.exists()  # heaters are staff's choice
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_household_and_staff_may_control_rooms_and_publish_on_the_set_topics():
    _migrate(BEFORE)
    _migrate(AFTER)
    for name in ("household", "staff"):
        group = Group.objects.get(name=name)
        assert group.permissions.filter(content_type__app_label="heating", codename="control").exists()
        grants = TopicGrant.objects.filter(group=group, may_publish=True).values_list("topic_filter", flat=True)
        assert {"{home}/+/target/set", "{home}/+/mode/set", "{home}/+/preset/set"} <= set(grants)
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
