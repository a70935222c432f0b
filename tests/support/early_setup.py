"""What must be decided before pytest-django reads the settings, earlier than any conftest runs.

Loaded as a plugin (``-p`` in pyproject's addopts). The hub's run-time files go to
a temporary folder, and ``pytest --postgres`` runs the collected tests (``make test``
picks ``-m postgres``) on PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from tests.support.services import service_url


def pytest_addoption(parser):
    parser.addoption(
        "--postgres",
        action="store_true",
        help="run against PostgreSQL (TEST_POSTGRES_URL, default 127.0.0.1:5432/test) instead of SQLite",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    os.environ.setdefault("HUB_VAR_DIR", tempfile.mkdtemp(prefix="hub-test-var-"))
    if "--postgres" in args:
        os.environ["DATABASE_URL"] = service_url("postgres")
