"""Wake-up signals: a commit that wrote rows for a worker wakes the worker of this process, through hub.wakeups.

The services (``messaging.services``, ``heating.services``) do not import the workers they wake; the import
contract ``services-do-not-import-their-workers`` (pyproject.toml) checks that, these tests the signals.
"""

from __future__ import annotations

import pytest
from django.db import transaction

import messaging
from heating import worker
from heating.models import Node
from heating.selectors import node_definition
from heating.services import COMMANDS_QUEUED, command_queue
from hub import wakeups
from messaging import relay
from messaging.services import OUTBOX_WRITTEN


def test_a_signal_runs_each_registered_callback_once_and_nothing_after_unregister():
    calls = []

    def first():
        calls.append("first")

    def second():
        calls.append("second")

    wakeups.register("test.signal", first)
    wakeups.register("test.signal", first)  # registering twice still wakes once
    wakeups.register("test.signal", second)
    try:
        wakeups.wake("test.signal")
        assert calls == ["first", "second"]
        wakeups.unregister("test.signal", first)
        wakeups.wake("test.signal")
        assert calls == ["first", "second", "second"]
    finally:
        wakeups.unregister("test.signal", second)
    wakeups.wake("test.signal")
    wakeups.wake("nobody.listens")  # a signal without callbacks wakes nothing and raises nothing
    assert calls == ["first", "second", "second"]


@pytest.fixture
def woken():
    """The signals sent while the test runs, in order."""
    sent = []
    callbacks = {name: (lambda name=name: sent.append(name)) for name in (OUTBOX_WRITTEN, COMMANDS_QUEUED)}
    for name, callback in callbacks.items():
        wakeups.register(name, callback)
    yield sent
    for name, callback in callbacks.items():
        wakeups.unregister(name, callback)


@pytest.mark.django_db(transaction=True)
def test_a_published_event_wakes_the_relay_when_its_transaction_commits_and_not_before(woken):
    with transaction.atomic():
        messaging.publish("test.wake", {}, source="test")
        assert woken == []
    assert woken == [OUTBOX_WRITTEN]

    with transaction.atomic():
        messaging.publish("test.wake", {}, source="test")
        transaction.set_rollback(True)
    assert woken == [OUTBOX_WRITTEN], "a rolled-back event wakes nothing"


@pytest.mark.django_db(transaction=True)
def test_a_queued_command_wakes_the_serial_worker_when_its_transaction_commits(woken):
    heater = Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater")
    with transaction.atomic():
        command_queue(node=heater, endpoint="Heating", value=1, definition=node_definition(heater))
        assert COMMANDS_QUEUED not in woken
    assert woken[-1] == COMMANDS_QUEUED


def test_the_workers_answer_their_signals():
    # The relay and the serial worker register when their modules load (the apps load them at start-up).
    worker._commands_queued.clear()
    wakeups.wake(COMMANDS_QUEUED)
    assert worker._commands_queued.is_set()

    idle = relay.OutboxRelay(amqp_url="memory://")  # never started: it only has to hear the signal
    wakeups.wake(OUTBOX_WRITTEN)
    assert idle._wake.is_set()
