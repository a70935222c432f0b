"""`manage.py runhub` faces its clients directly, so it believes no forwarded header, even from loopback.

Seen before: a script on the hub's own machine sent a new X-Forwarded-For with every wrong password and was
never locked out. The address django-axes counts must be the TCP peer's.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.hub.test_embedded_run import PROJECT_DIR, RunningHub, free_port
from tests.support.login_form import sign_in

pytestmark = pytest.mark.slow

PASSWORD = "plum-orchard-velvet-42"


CREATE_BOB = (
    f"from django.contrib.auth import get_user_model as m; m().objects.create_user('bob', password={PASSWORD!r})"
)


def test_the_embedded_server_ignores_x_forwarded_for_from_a_loopback_client(tmp_path):
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUB_", "DJANGO_", "DOWNLOADS_", "SYSLOG_", "AXES_", "FORWARDED_"))
        and key not in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "MQTT_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY")
    }
    port = free_port()
    # FORWARDED_ALLOW_IPS is uvicorn's own variable; even set, runhub must not believe the header.
    environ.update(
        HUB_MODE="embedded",
        HUB_BIND=f"127.0.0.1:{port}",
        HUB_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'hub.sqlite3'}",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    for command in (["migrate", "--noinput", "-v", "0"], ["shell", "-c", CREATE_BOB]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=PROJECT_DIR, env=environ, check=True, capture_output=True
        )
    hub = RunningHub(environ, port)
    try:
        hub.wait_until_answering()

        def attempt(password: str, forwarded_for: str):
            headers = {"X-Forwarded-For": forwarded_for, "X-Real-IP": forwarded_for}
            return sign_in(hub.base, "bob", password, origin=hub.base, headers=headers)

        statuses = [attempt("wrong-password", f"198.51.100.{n}").status for n in range(1, 21)]
        assert statuses == [200] * 4 + [429] * 16, f"each invented address was counted apart: {statuses}"
        right = attempt(PASSWORD, "203.0.113.99")
        assert right.status == 429
        assert "sessionid" not in right.cookies
    finally:
        hub.stop(15)
