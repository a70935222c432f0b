"""Error pages under `make run`: the hub's own 404 and 500, never Django's debug pages, and static files still served.

The embedded server runs as a real ``manage.py runhub`` subprocess with the environment ``make run`` has (no
DEBUG set); one test checks the warning runhub logs when DEBUG is turned on for the whole network.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string

from tests.support.runhub import PROJECT_DIR, running_hub

# runhub loads the ASGI application, whose django.setup() configures logging again and so drops the handler
# pytest captures log records with. Loaded here, at collection, it does that once before any test captures.
import hub.asgi  # noqa: F401  isort: skip

# Django's debug pages: the 404 lists the URL map, the 500 shows the traceback and settings.
DEBUG_PAGE_MARKS = ("Using the URLconf defined in", "Traceback", "DEBUG = True", "technical_500")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Status, content type and body of a GET, whatever the status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


@pytest.fixture
def started_hub(hub_environment):
    environ, port = hub_environment
    with running_hub(environ, port) as running:
        yield running, environ


@pytest.mark.slow
def test_make_run_answers_a_mistyped_address_with_the_hubs_404_and_still_serves_static_files(started_hub):
    hub, _environ = started_hub
    status, _type, body = get(hub.base + "/no-such-page/")
    assert status == 404
    assert "The hub has no page at this address" in body
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in body, "in the hub's look"
    for mark in DEBUG_PAGE_MARKS:
        assert mark not in body, f"Django's debug page answered ({mark!r})"

    status, content_type, css = get(hub.base + "/static/vendor/bootstrap/css/bootstrap.min.css")
    assert status == 200
    assert content_type.startswith("text/css")
    assert "Bootstrap" in css[:500]
    status, _type, _svg = get(hub.base + "/static/hub/favicon.svg")
    assert status == 200


@pytest.mark.slow
def test_make_run_answers_a_failing_view_with_the_hubs_500(started_hub):
    hub, environ = started_hub
    # Break the database under the running server: every signed-in page then raises inside its view's stack.
    database = environ["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TABLE django_session")
    status, _type, body = get(hub.base + "/", headers={"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"})
    assert status == 500
    assert "Something went wrong" in body
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in body, "in the hub's look"
    for mark in (*DEBUG_PAGE_MARKS, "django_session", "OperationalError"):
        assert mark not in body, f"the error's details reached the browser ({mark!r})"


def test_the_error_pages_render_without_a_request():
    # Django renders 500.html with no request (nothing may depend on one when everything else failed).
    page = render_to_string("500.html")
    assert "Something went wrong" in page
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in page
    assert "The hub has no page at this address" in render_to_string("404.html")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bind", "debug", "warned"),
    [
        ("0.0.0.0:8000", True, True),
        ("192.168.1.20:8000", True, True),
        ("hub.local:8000", True, True),
        ("127.0.0.1:8000", True, False),
        ("[::1]:8000", True, False),
        ("localhost:8000", True, False),
        ("0.0.0.0:8000", False, False),
    ],
)
def test_runhub_warns_when_debug_is_on_and_other_machines_can_connect(
    settings, monkeypatch, caplog, bind, debug, warned
):
    import uvicorn

    from hub.env import parse_bind

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    settings.DEBUG = debug
    settings.HUB_BIND = bind
    settings.HUB_BIND_HOST, settings.HUB_BIND_PORT = parse_bind(bind)
    with caplog.at_level(logging.WARNING, logger="hub.management.commands.runhub"):
        call_command("runhub")
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    if warned:
        assert len(warnings) == 1
        assert f"DEBUG is on and HUB_BIND={bind} lets other machines in" in warnings[0]
    else:
        assert warnings == []


@pytest.mark.slow
def test_the_runhub_warning_is_a_line_on_stderr(hub_environment):
    environ, port = hub_environment
    environ = {**environ, "DEBUG": "true", "HUB_BIND": f"0.0.0.0:{port}"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runhub"],
        cwd=PROJECT_DIR,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        while line and "DEBUG is on" not in line:
            line = process.stderr.readline()
    finally:
        process.kill()
        process.communicate(timeout=10)
    assert f"WARNING hub.management.commands.runhub DEBUG is on and HUB_BIND=0.0.0.0:{port} lets other" in line
