"""hub.logging: the syslog handler that SYSLOG_ADDRESS and SYSLOG_FACILITY switch on, for the web and Celery."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from logging.handlers import SysLogHandler
from pathlib import Path

import pytest
from celery.utils.log import ColorFormatter
from django.core.exceptions import ImproperlyConfigured

from hub.logging import (
    SYSLOG_FORMAT,
    add_syslog_handler,
    build_logging_config,
    build_syslog_handler,
    parse_syslog_address,
    syslog_facility_code,
    turn_off_colours,
)
from tests.support.syslog import open_receiver, pri

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["udp", "unix"])
def syslog(request):
    with open_receiver(request.param) as receiver:
        yield receiver


def test_a_socket_path_or_host_and_port():
    assert parse_syslog_address("/dev/log") == "/dev/log"
    assert parse_syslog_address("logs.example.org:514") == ("logs.example.org", 514)
    assert parse_syslog_address("[::1]:5514") == ("::1", 5514)


@pytest.mark.parametrize("value", ["loghost", "loghost:", ":514", "loghost:syslog", "dev/log"])
def test_anything_else_is_refused_naming_the_variable(value):
    with pytest.raises(ImproperlyConfigured, match=f"^SYSLOG_ADDRESS='{value}' is not valid"):
        parse_syslog_address(value)


def test_facility_names_are_syslogs_own():
    assert syslog_facility_code("local3") == SysLogHandler.LOG_LOCAL3
    assert syslog_facility_code("DAEMON") == SysLogHandler.LOG_DAEMON
    with pytest.raises(ImproperlyConfigured, match=r"^SYSLOG_FACILITY='nope' is not valid: expected one of"):
        syslog_facility_code("nope")


def test_a_bad_facility_is_refused_even_without_a_syslog_address():
    # So a typo is caught the day it is made, not the day syslog is switched on.
    with pytest.raises(ImproperlyConfigured, match="SYSLOG_FACILITY"):
        build_logging_config(level="INFO", syslog_address="", syslog_facility="nope")


def test_without_an_address_there_is_no_syslog_handler():
    config = build_logging_config(level="INFO", syslog_address="", syslog_facility="user")
    assert set(config["handlers"]) == {"console"}


def test_with_an_address_the_root_logger_also_logs_to_syslog():
    config = build_logging_config(level="WARNING", syslog_address="/dev/log", syslog_facility="local1")
    assert config["root"] == {"handlers": ["console", "syslog"], "level": "WARNING"}


def test_a_record_reaches_the_socket_with_facility_and_severity_in_the_pri(syslog):
    handler = build_syslog_handler(syslog.address, "local2")
    logger = logging.Logger("hub.test-logging")
    logger.addHandler(handler)
    try:
        logger.error("disk %s is full", "sda")
        message = syslog.wait_for("disk sda is full", timeout=5)
    finally:
        handler.close()
    assert message.facility * 8 + message.severity == pri("local2", "err")
    assert message.text.startswith(f"hub[{os.getpid()}]: ERROR hub.test-logging disk sda is full")


def test_add_syslog_handler_keeps_an_existing_one():
    logger = logging.Logger("hub.test-existing")
    existing = build_syslog_handler("127.0.0.1:9", "user")
    logger.addHandler(existing)
    try:
        kept = add_syslog_handler(
            logger, address="127.0.0.1:9", facility="user", formatter=logging.Formatter(SYSLOG_FORMAT)
        )
        assert kept is existing
        assert logger.handlers == [existing]
    finally:
        existing.close()


def test_turn_off_colours_leaves_plain_formatters_alone():
    logger = logging.Logger("hub.test-colours")
    coloured, plain = logging.StreamHandler(), logging.StreamHandler()
    coloured.setFormatter(ColorFormatter("%(levelname)s %(message)s", use_color=True))
    plain.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(coloured)
    logger.addHandler(plain)
    turn_off_colours(logger)
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "boom", (), None)
    assert coloured.format(record) == "ERROR boom"
    assert plain.format(record) == "boom"


def test_the_web_process_logs_to_syslog_when_the_environment_says_so(syslog, tmp_path):
    """Settings → LOGGING → a SysLogHandler on the root logger, in a fresh process as `make run` starts it."""
    marker = uuid.uuid4().hex
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("SYSLOG_", "LOG_LEVEL"))}
    environment.update(
        DJANGO_SETTINGS_MODULE="hub.settings",
        HUB_VAR_DIR=str(tmp_path),
        SYSLOG_ADDRESS=syslog.address,
        SYSLOG_FACILITY="daemon",
    )
    script = f"import django, logging; django.setup(); logging.getLogger('hub.web').warning('web says {marker}')"
    subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, check=True, timeout=60)
    message = syslog.wait_for(f"web says {marker}", timeout=5)
    assert message.facility * 8 + message.severity == pri("daemon", "warning")
    assert "WARNING hub.web web says" in message.text
