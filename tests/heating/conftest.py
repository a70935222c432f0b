"""Fixtures the heating tests share (the house in UTC, an identified heater node), and the test database.

The serial worker's tests run it on a thread beside the test: the threads must share the test database.

pytest-django's in-memory SQLite database is shared between threads only through SQLite's shared cache, whose
table locks fail at once ("database table is locked") instead of waiting. So whenever these tests are collected,
the session's SQLite test database is a file (WAL, IMMEDIATE transactions, busy timeout from hub/settings.py), as
the browser tests already arrange (tests/browser/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from heating.models import Node

_database = settings.DATABASES["default"]
if _database["ENGINE"] == "django.db.backends.sqlite3" and not _database.get("TEST", {}).get("NAME"):
    _database.setdefault("TEST", {})["NAME"] = str(Path(settings.HUB_VAR_DIR) / "test-threads.sqlite3")


@pytest.fixture
def house_in_utc(settings):
    """The house's zone is UTC, so the tests' times (WEDNESDAY_10) are the house's local times."""
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def heater_node():
    """A room heater the radio has identified (address a1): its RoomTemp a room's sensor, its Heating relay."""
    return Node.objects.create(address=0xA1, manufacturer_id=72, product_id=1, definition="heater/Room heater")
