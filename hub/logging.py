"""Logging configuration, shared by the web process, workers and Celery.

``SYSLOG_ADDRESS`` (``/dev/log`` or ``host:port``) adds a SysLogHandler with
``SYSLOG_FACILITY``; without it everything goes to stderr.
"""

from __future__ import annotations

import logging
from logging.handlers import SysLogHandler

from django.core.exceptions import ImproperlyConfigured

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Syslog adds its own time and host; the tag lets `grep hub` find the lines.
SYSLOG_FORMAT = "hub[%(process)d]: %(levelname)s %(name)s %(message)s"
# Celery's TaskFormatter fills in task_name and task_id.
SYSLOG_TASK_FORMAT = "hub[%(process)d]: %(levelname)s %(task_name)s[%(task_id)s] %(message)s"


def parse_syslog_address(value: str) -> str | tuple[str, int]:
    """A socket path (starts with ``/``) or ``host:port`` for UDP."""
    if value.startswith("/"):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ImproperlyConfigured(
            f"SYSLOG_ADDRESS={value!r} is not valid: expected a socket path such as /dev/log or host:port"
        )
    return host.strip("[]"), int(port)


def syslog_facility_code(name: str) -> int:
    try:
        return SysLogHandler.facility_names[name.lower()]
    except KeyError:
        known = ", ".join(sorted(SysLogHandler.facility_names))
        raise ImproperlyConfigured(f"SYSLOG_FACILITY={name!r} is not valid: expected one of {known}") from None


def build_syslog_handler(address: str, facility: str, formatter: logging.Formatter | None = None) -> SysLogHandler:
    handler = SysLogHandler(address=parse_syslog_address(address), facility=syslog_facility_code(facility))
    handler.setFormatter(formatter or logging.Formatter(SYSLOG_FORMAT))
    return handler


def add_syslog_handler(
    logger: logging.Logger, *, address: str, facility: str, formatter: logging.Formatter
) -> SysLogHandler:
    """Give ``logger`` a syslog handler unless it has one (``LOGGING`` may already have put one on root)."""
    for handler in logger.handlers:
        if isinstance(handler, SysLogHandler):
            return handler
    handler = build_syslog_handler(address, facility, formatter)
    logger.addHandler(handler)
    return handler


def turn_off_colours(logger: logging.Logger) -> None:
    """Stop Celery's colour formatters writing ANSI escapes (they end up in syslog and log files)."""
    for handler in logger.handlers:
        if hasattr(handler.formatter, "use_color"):
            handler.formatter.use_color = False


def build_logging_config(*, level: str, syslog_address: str, syslog_facility: str) -> dict:
    handlers: dict[str, dict] = {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    }
    if syslog_address:
        parse_syslog_address(syslog_address)
        handlers["syslog"] = {
            "()": build_syslog_handler,
            "address": syslog_address,
            "facility": syslog_facility,
        }
    else:
        syslog_facility_code(syslog_facility)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": PLAIN_FORMAT}},
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {
            "django": {"level": "INFO"},
            # Quiet the libraries that log every frame at INFO.
            "amqp": {"level": "WARNING"},
            "kombu": {"level": "WARNING"},
        },
    }
