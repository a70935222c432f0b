"""The serial worker's tests run it on a thread beside the test: the threads must share the test database.

pytest-django's in-memory SQLite database is shared between threads only through SQLite's shared cache, whose
table locks fail at once ("database table is locked") instead of waiting. So whenever these tests are collected,
the session's SQLite test database is a file (WAL, IMMEDIATE transactions, busy timeout from hub/settings.py), as
the browser tests already arrange (tests/browser/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

_database = settings.DATABASES["default"]
if _database["ENGINE"] == "django.db.backends.sqlite3" and not _database.get("TEST", {}).get("NAME"):
    _database.setdefault("TEST", {})["NAME"] = str(Path(settings.HUB_VAR_DIR) / "test-threads.sqlite3")
