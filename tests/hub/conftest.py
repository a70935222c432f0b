"""Fixtures for the tests that run the hub as a real process (tests/support/runhub.py)."""

from __future__ import annotations

import pytest

from tests.support.runhub import embedded_environment, free_port, manage


@pytest.fixture
def hub_environment(tmp_path) -> tuple[dict[str, str], int]:
    """The environment of ``make run`` on a free port with a migrated SQLite file under ``tmp_path``, and the port."""
    port = free_port()
    environ = embedded_environment(tmp_path, port=port)
    manage(environ, "migrate", "--noinput", "-v", "0", timeout=120, check=True)
    return environ, port
