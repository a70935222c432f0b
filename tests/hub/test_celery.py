"""The Celery app's configuration and its logging signal handlers, in this process.

The worker subprocess tests (test_celery_worker.py) show the same end to end
against RabbitMQ; these are the fast checks of each piece.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from celery import shared_task, signals
from celery.app.log import TaskFormatter
from celery.utils.log import ColorFormatter, get_task_logger
from django.db import transaction

from hub import celery_app
from tests.support.syslog import open_receiver, pri

task_logger = get_task_logger(__name__)


@shared_task(name="tests.celery.add")
def add(left: int, right: int) -> int:
    return left + right


recorded_sums: list[int] = []


@shared_task(name="tests.celery.record_sum")
def record_sum(left: int, right: int) -> None:
    recorded_sums.append(left + right)


@shared_task(name="tests.celery.log")
def log_marker(marker: str) -> None:
    task_logger.warning("eager task says %s", marker)


@pytest.fixture(params=["udp", "unix"])
def syslog(request, settings):
    with open_receiver(request.param) as receiver:
        settings.SYSLOG_ADDRESS = receiver.address
        settings.SYSLOG_FACILITY = "local5"
        yield receiver


@pytest.fixture
def isolated_logger():
    """A logger of our own, so the signal handlers' handlers never land on a logger other tests use."""
    logger = logging.Logger(f"test-{uuid.uuid4().hex[:8]}", logging.INFO)
    yield logger
    for handler in logger.handlers:
        handler.close()


def test_tasks_accept_json_only_and_are_acknowledged_after_they_ran():
    conf = celery_app.conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_hijack_root_logger is False


def test_the_embedded_default_runs_tasks_eagerly_on_the_memory_transport():
    assert celery_app.conf.task_always_eager is True
    assert celery_app.conf.broker_url == "memory://"
    assert add.delay(2, 3).get(timeout=1) == 5


def _queue_then_fail() -> None:
    with transaction.atomic():
        record_sum.delay_on_commit(40, 2)
        raise RuntimeError("the change is rolled back")


@pytest.mark.django_db
def test_delay_on_commit_runs_once_the_transaction_commits_and_never_after_a_rollback(
    django_capture_on_commit_callbacks,
):
    recorded_sums.clear()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            _queue_then_fail()
        record_sum.delay_on_commit(1, 1)
        assert recorded_sums == []
    assert recorded_sums == [2]


def test_stdout_goes_to_the_log_at_info_and_colours_are_off():
    assert celery_app.conf.worker_redirect_stdouts is True
    assert celery_app.conf.worker_redirect_stdouts_level == "INFO"
    assert celery_app.conf.worker_log_color is False
    assert celery_app.log.supports_color() is False


def test_the_task_logger_signal_adds_a_syslog_handler_with_the_facility(syslog, isolated_logger):
    signals.after_setup_task_logger.send(sender=None, logger=isolated_logger, loglevel=logging.INFO)
    isolated_logger.info("task logger line %s", "one")
    message = syslog.wait_for("task logger line one", timeout=5)
    assert message.facility * 8 + message.severity == pri("local5", "info")
    # Outside a task Celery's TaskFormatter fills the name and id with ???.
    assert "???[???] task logger line one" in message.text


def test_the_worker_logger_signal_adds_a_syslog_handler_with_the_facility(syslog, isolated_logger):
    signals.after_setup_logger.send(sender=None, logger=isolated_logger, loglevel=logging.INFO)
    isolated_logger.error("worker logger line")
    message = syslog.wait_for("worker logger line", timeout=5)
    assert message.facility * 8 + message.severity == pri("local5", "err")
    assert f"ERROR {isolated_logger.name} worker logger line" in message.text


def test_a_logger_that_already_logs_to_syslog_gets_no_second_handler(syslog, isolated_logger):
    # LOGGING already gives the root logger a syslog handler when SYSLOG_ADDRESS is set.
    signals.after_setup_logger.send(sender=None, logger=isolated_logger, loglevel=logging.INFO)
    signals.after_setup_logger.send(sender=None, logger=isolated_logger, loglevel=logging.INFO)
    isolated_logger.warning("said once")
    syslog.wait_for("said once", timeout=5)
    assert syslog.count("said once") == 1


def test_without_syslog_address_no_handler_is_added(settings, isolated_logger):
    settings.SYSLOG_ADDRESS = ""
    signals.after_setup_task_logger.send(sender=None, logger=isolated_logger, loglevel=logging.INFO)
    signals.after_setup_logger.send(sender=None, logger=isolated_logger, loglevel=logging.INFO)
    assert isolated_logger.handlers == []


def test_the_signals_turn_off_colours_celery_chose_for_a_terminal(settings, isolated_logger):
    settings.SYSLOG_ADDRESS = ""
    # What `celery worker` without --no-color sets up when stderr is a terminal, whatever worker_log_color says.
    coloured = logging.StreamHandler()
    coloured.setFormatter(TaskFormatter("%(levelname)s %(message)s", use_color=True))
    isolated_logger.addHandler(coloured)
    record = isolated_logger.makeRecord(isolated_logger.name, logging.ERROR, __file__, 1, "boom", (), None)
    assert "\x1b[" in coloured.format(record)

    signals.after_setup_task_logger.send(sender=None, logger=isolated_logger, loglevel=logging.INFO)

    assert "\x1b[" not in coloured.format(record)
    assert isinstance(coloured.formatter, ColorFormatter)


def test_an_eager_task_log_record_reaches_syslog_with_its_name_and_id(syslog):
    # Celery sets the task logger up (and sends after_setup_task_logger) as a worker does; undone afterwards.
    task_root = logging.getLogger("celery.task")
    saved = (list(task_root.handlers), task_root.level, task_root.propagate)
    try:
        celery_app.log.setup_task_loggers(loglevel=logging.INFO)
        marker = uuid.uuid4().hex
        result = log_marker.apply(args=[marker], task_id=f"id-{marker}")
        assert result.successful()
        message = syslog.wait_for(f"eager task says {marker}", timeout=5)
    finally:
        for handler in task_root.handlers:
            if handler not in saved[0]:
                handler.close()
        task_root.handlers, task_root.level, task_root.propagate = saved
    assert message.facility * 8 + message.severity == pri("local5", "warning")
    assert f"tests.celery.log[id-{marker}] eager task says {marker}" in message.text
