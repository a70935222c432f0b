"""The thermostat's writes outside the worker: decisions recorded only when they change (and hourly), alerts raised
once and cleared, and a relay that takes one pending command at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from heating import services
from heating.models import Alert, Command, CommandState, Decision, Node, Room
from heating.selectors import node_definition
from hub.timefmt import format_utc
from messaging.models import OutboxEvent

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def room():
    return Room.objects.create(slug="living", name="Living room")


@pytest.fixture
def heater():
    return Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater")


def record(room, at, heat=True, reason="on: below target", temperature=19.0):
    return services.decision_record(room=room, at=at, heat=heat, reason=reason, target=21.0, temperature=temperature)


def test_a_decision_is_recorded_and_published_only_when_its_outcome_or_reason_changes(room):
    start = timezone.now()
    assert record(room, start) is not None
    assert record(room, start + timedelta(seconds=30), temperature=19.2) is None  # same outcome, same reason
    assert record(room, start + timedelta(minutes=5), heat=True, reason="on: holding (minimum on time)") is not None
    assert record(room, start + timedelta(minutes=6), heat=False, reason="off: at target") is not None
    assert list(Decision.objects.filter(room=room).order_by("at").values_list("reason", flat=True)) == [
        "on: below target",
        "on: holding (minimum on time)",
        "off: at target",
    ]
    events = OutboxEvent.objects.filter(type="heating.decision").order_by("occurred_at")
    assert [(event.data["room"], event.data["heat"], event.data["changed"]) for event in events] == [
        ("living", True, True),
        ("living", True, True),
        ("living", False, True),
    ]


def test_an_unchanged_decision_is_still_recorded_once_an_hour(room):
    start = timezone.now()
    record(room, start)
    assert record(room, start + timedelta(minutes=59)) is None
    hourly = record(room, start + timedelta(minutes=60), temperature=20.1)
    assert hourly is not None
    assert hourly.temperature == 20.1
    assert record(room, start + timedelta(minutes=61)) is None
    assert Decision.objects.filter(room=room).count() == 2
    assert OutboxEvent.objects.filter(type="heating.decision", data__changed=False).count() == 1


def test_decisions_of_different_rooms_do_not_hide_each_other(room):
    other = Room.objects.create(slug="bedroom", name="Bedroom")
    now = timezone.now()
    assert record(room, now) is not None
    assert record(other, now) is not None


def test_an_alert_is_raised_once_while_open_and_cleared_with_events(room):
    now = timezone.now()
    alert = services.alert_raise(room=room, kind="sensor_stale", message="No temperature for 35 minutes", at=now)
    assert alert is not None
    assert services.alert_raise(room=room, kind="sensor_stale", message="again", at=now) is None
    assert Alert.objects.filter(room=room, cleared_at__isnull=True).count() == 1
    raised = OutboxEvent.objects.get(type="heating.alert_raised")
    assert raised.data["room"] == "living"
    assert raised.data["kind"] == "sensor_stale"
    assert raised.data["title"] == "no temperature"

    cleared = services.alert_clear(room=room, kind="sensor_stale", at=now + timedelta(minutes=2))
    assert cleared.pk == alert.pk
    assert cleared.cleared_at == now + timedelta(minutes=2)
    assert services.alert_clear(room=room, kind="sensor_stale", at=now) is None  # nothing open any more
    assert OutboxEvent.objects.filter(type="heating.alert_cleared", data__alert=alert.pk).count() == 1
    # The condition coming back is a new alert.
    assert services.alert_raise(room=room, kind="sensor_stale", message="No temperature", at=now) is not None
    assert Alert.objects.filter(room=room, kind="sensor_stale").count() == 2


def test_alerts_of_different_kinds_and_rooms_are_separate(room):
    other = Room.objects.create(slug="bedroom", name="Bedroom")
    now = timezone.now()
    assert services.alert_raise(room=room, kind="frost", message="3.1 °C", at=now)
    assert services.alert_raise(room=room, kind="relay_stuck", message="stuck", at=now)
    assert services.alert_raise(room=other, kind="frost", message="2.0 °C", at=now)
    services.alert_clear(room=room, kind="frost", at=now)
    assert set(Alert.objects.filter(cleared_at__isnull=True).values_list("room__slug", "kind")) == {
        ("living", "relay_stuck"),
        ("bedroom", "frost"),
    }


def test_an_unknown_alert_kind_is_refused(room):
    with pytest.raises(ValueError, match="not an alert kind"):
        services.alert_raise(room=room, kind="on_fire", message="?", at=timezone.now())


def test_an_acknowledged_alert_stays_open_until_its_condition_clears(room, household_user):
    now = timezone.now()
    alert = services.alert_raise(room=room, kind="heating_failure", message="no warming", at=now)
    services.alert_acknowledge(alert=alert, by=household_user, at=now + timedelta(minutes=1))
    alert.refresh_from_db()
    assert alert.acknowledged_by == household_user
    assert alert.acknowledged_at == now + timedelta(minutes=1)
    assert alert.cleared_at is None
    # Acknowledging again keeps who saw it first.
    services.alert_acknowledge(alert=alert, by=None, at=now + timedelta(minutes=5))
    alert.refresh_from_db()
    assert alert.acknowledged_by == household_user


def test_an_acknowledgement_is_published_once_with_who_and_when(room, household_user):
    now = timezone.now()
    alert = services.alert_raise(room=room, kind="frost", message="6.1 °C", at=now)
    services.alert_acknowledge(alert=alert, by=household_user, at=now + timedelta(minutes=1))
    published = OutboxEvent.objects.get(type="heating.alert_acknowledged")
    assert published.data["alert"] == alert.pk
    assert published.data["room"] == "living"
    assert published.data["kind"] == "frost"
    assert published.data["by"] == "alice"
    assert published.data["at"] == format_utc(now + timedelta(minutes=1))
    # A second acknowledgement (this copy of the alert does not know of the first) records and announces nothing.
    stale_copy = Alert.objects.get(pk=alert.pk)
    stale_copy.acknowledged_at = None
    services.alert_acknowledge(alert=stale_copy, by=None, at=now + timedelta(minutes=2))
    assert OutboxEvent.objects.filter(type="heating.alert_acknowledged").count() == 1
    assert stale_copy.acknowledged_by == household_user


def test_an_acknowledgement_by_nobody_in_particular_says_so(room):
    now = timezone.now()
    alert = services.alert_raise(room=room, kind="relay_stuck", message="stuck", at=now)
    services.alert_acknowledge(alert=alert, by=None, at=now)
    assert OutboxEvent.objects.get(type="heating.alert_acknowledged").data["by"] is None


def test_a_relay_takes_one_pending_command_at_a_time(heater):
    definition = node_definition(heater)
    first = services.command_queue(node=heater, endpoint="Heating", value=1, definition=definition, origin="thermostat")
    with pytest.raises(services.CommandPending, match="already has a command waiting") as refused:
        services.command_queue(node=heater, endpoint="Heating", value=0, definition=definition, origin="api")
    assert refused.value.field == "endpoint"
    assert refused.value.pending == first
    # Sent but not yet confirmed is still pending.
    services.command_mark_sent(command=first, at=timezone.now())
    with pytest.raises(services.CommandPending):
        services.command_queue(node=heater, endpoint="161.12.0", value=0, definition=definition, origin="api")
    # Another endpoint of the same node is not held up.
    services.command_queue(node=heater, endpoint="Manual", value=1, definition=definition, origin="thermostat")
    services.command_confirm(command=first, at=timezone.now())
    second = services.command_queue(node=heater, endpoint="Heating", value=0, definition=definition, origin="api")
    assert second.state == CommandState.QUEUED
    assert Command.objects.filter(endpoint="Heating").count() == 2


def test_a_failed_relay_command_frees_the_relay_for_the_next(heater):
    definition = node_definition(heater)
    first = services.command_queue(node=heater, endpoint="Heating", value=1, definition=definition)
    services.command_fail(command=first, error="no STATUS", at=timezone.now())
    assert services.command_queue(node=heater, endpoint="Heating", value=1, definition=definition).pk != first.pk
