"""Celery, the documented way: one app configured from Django's ``CELERY_`` settings.

Production runs ``celery -A hub worker`` and ``celery -A hub beat`` against
RabbitMQ (``AMQP_URL``); the embedded default runs tasks eagerly and beat's
entries in-process (:mod:`hub.beat`). Tasks live in each app's ``tasks.py``.

``SYSLOG_ADDRESS`` sends the worker's and beat's log, and every task's log, to
syslog: Django's ``LOGGING`` covers the root logger, but Celery gives the task
logger handlers of its own and stops it propagating, so the signal handlers
below attach the syslog handler there too.
"""

from __future__ import annotations

import logging
import os

from celery import Celery, signals
from celery.app.log import TaskFormatter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

celery_app = Celery("hub")
celery_app.config_from_object("django.conf:settings", namespace="CELERY")
celery_app.autodiscover_tasks()


@signals.after_setup_logger.connect
def send_worker_log_to_syslog(logger: logging.Logger, **_kwargs: object) -> None:
    from hub.logging import SYSLOG_FORMAT

    _finish_logger_setup(logger, logging.Formatter(SYSLOG_FORMAT))


@signals.after_setup_task_logger.connect
def send_task_log_to_syslog(logger: logging.Logger, **_kwargs: object) -> None:
    from hub.logging import SYSLOG_TASK_FORMAT

    _finish_logger_setup(logger, TaskFormatter(SYSLOG_TASK_FORMAT, use_color=False))


def _finish_logger_setup(logger: logging.Logger, syslog_formatter: logging.Formatter) -> None:
    from django.conf import settings

    from hub.logging import add_syslog_handler, turn_off_colours

    # `celery worker` colours a terminal's log unless given --no-color, whatever worker_log_color says.
    turn_off_colours(logger)
    if settings.SYSLOG_ADDRESS:
        add_syslog_handler(
            logger, address=settings.SYSLOG_ADDRESS, facility=settings.SYSLOG_FACILITY, formatter=syslog_formatter
        )
