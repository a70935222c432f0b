"""`make run`'s parts: `manage.py migrate` then `manage.py runhub`, as a real subprocess on a free port.

The first start creates an admin account and prints its generated password once; that password signs in;
/healthz answers; SIGTERM and SIGINT both stop the server after the ASGI lifespan's shutdown has run.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.support.runhub import PROJECT_DIR, RunningHub

PASSWORD_LINE = re.compile(r"^\s*password: (\S+)\s*$", re.MULTILINE)

pytestmark = pytest.mark.slow


@pytest.fixture
def start_hub(hub_environment):
    """``start_hub()`` → a RunningHub; any still running after the test (a failed assertion) is killed."""
    environ, port = hub_environment
    started: list[RunningHub] = []

    def start() -> RunningHub:
        started.append(RunningHub(environ, port))
        return started[-1]

    yield start
    for hub in started:
        hub.kill()


def sign_in(base: str, username: str, password: str) -> int:
    """Sign in through the admin's login form (CSRF and all); the status of the page it lands on."""
    cookies = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    form = opener.open(base + "/admin/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"}
    ).encode()
    request = urllib.request.Request(base + "/admin/login/?next=/admin/", data=body, headers={"Referer": base})
    with opener.open(request, timeout=10) as response:
        landed = response.geturl()
        status = response.status
    assert urllib.parse.urlsplit(landed).path == "/admin/", f"stayed on {landed}: the password was not accepted"
    return status


def container_health_check(base: str) -> int:
    """What docker-compose's web health check runs (deploy/healthcheck.py), pointed at this server."""
    script = PROJECT_DIR / "deploy" / "healthcheck.py"
    environ = {key: value for key, value in os.environ.items() if key != "ALLOWED_HOSTS"}
    completed = subprocess.run(
        [sys.executable, str(script), "http", base + "/healthz"], env=environ, capture_output=True, timeout=30
    )
    return completed.returncode


def test_make_run_prints_a_working_admin_password_once_answers_healthz_and_stops_cleanly(start_hub):
    first = start_hub()
    first.wait_until_answering()
    with urllib.request.urlopen(first.base + "/healthz", timeout=10) as response:
        assert response.status == 200
    passwords = PASSWORD_LINE.findall(first.output)
    assert len(passwords) == 1, f"expected one generated password:\n{first.output}"
    assert sign_in(first.base, "admin", passwords[0]) == 200
    assert container_health_check(first.base) == 0
    # uvicorn re-raises the signal once its shutdown is done, so the exit status may be the signal's own.
    assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert "Application startup complete" in first.output
    assert "Application shutdown complete" in first.output, "SIGTERM must run the lifespan's shutdown"
    assert container_health_check(first.base) != 0, "the health check notices the server is gone"

    second = start_hub()
    second.wait_until_answering()
    assert not PASSWORD_LINE.search(second.output), "the password is shown on the first start only"
    assert "password" not in second.output.lower()
    assert second.stop(signal.SIGINT) in (0, -signal.SIGINT, 130)
    assert "Application shutdown complete" in second.output, "Ctrl-C must run the lifespan's shutdown"
    assert "Traceback" not in first.output + second.output
