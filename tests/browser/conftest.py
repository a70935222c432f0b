"""The browser-test harness: Playwright driving Debian's Chromium against the real hub under uvicorn.

Fixtures (put browser tests in this folder; do not mark them ``django_db`` — ``hub_server`` brings the database):

* ``hub_server`` — the base URL (``http://127.0.0.1:<port>``) of ``hub.asgi.build_application(run_embedded=False)``
  served by uvicorn on a background thread; the test gets a transactional database the server reads, restored
  to its migrated contents (groups, permissions) afterwards.
* ``page`` — a Playwright ``Page`` at desktop size (1280 x 800) whose relative URLs go to ``hub_server``.
* ``new_page(viewport=PHONE, **context_options)`` — another page in a fresh browser context (own cookies).
* ``hub_user(username, staff=False)`` — a user in group ``household`` (or ``staff``) with ``support.PASSWORD``.
* ``signed_in_page(user=None, viewport=DESKTOP)`` — a new page already signed in through the login form.
* ``support.login(page, user)`` — sign in through the form on a page you already have.
* ``event_pipeline`` — the outbox relay and the ``events.notify`` consumer on the in-memory bus, so the events a
  change publishes reach every open page over ``/ws/push`` as in the embedded hub.

Every page refuses requests to any host but the test server (the test errors at teardown if a page tried one),
and a failing test leaves a screenshot of each of its pages under ``test-artifacts/``.
Without Chromium the tests skip with a reason; with ``CI`` set they fail instead.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.browser.support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PASSWORD,
    HubServer,
    artifact_name,
    login,
)
from tests.support.services import in_ci

BROWSER_TESTS = Path(__file__).resolve().parent

# pytest-django's SQLite test database lives in memory, where another thread's connection only shares it
# through SQLite's shared cache and its table locks. The server thread must read what a test wrote, so
# whenever the browser tests are collected the session's SQLite test database is a file (WAL, busy timeout).
_database = settings.DATABASES["default"]
if _database["ENGINE"] == "django.db.backends.sqlite3" and not _database.get("TEST", {}).get("NAME"):
    _database.setdefault("TEST", {})["NAME"] = str(Path(settings.HUB_VAR_DIR) / "test-browser.sqlite3")


def pytest_collection_modifyitems(config, items):
    # Which tests run first is decided in tests/conftest.py (browser tests, then other serialized rollbacks).
    for item in items:
        if BROWSER_TESTS in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)
            # whitenoise 6 hands Django a synchronous file iterator, which Django buffers under ASGI and warns
            # about on every static file; harmless here (production's nginx serves static files itself).
            item.add_marker(pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so fixtures can tell, at teardown, whether the test failed.
    report = yield
    setattr(item, f"hub_report_{report.when}", report)
    return report


# Package scope, not session: Playwright's sync API keeps an asyncio loop marked running on the main thread while
# it is started, which would break every later test that runs a loop or checks Django's async safety.
@pytest.fixture(scope="package")
def chromium(django_db_setup):
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium, or set HUB_TEST_CHROMIUM)"
        if in_ci():
            pytest.fail(f"{reason}; CI is set, so the browser tests must run")
        pytest.skip(reason)
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # That loop is Playwright's, parked in a greenlet; the test's own ORM calls are plain synchronous code.
    # Django's guard would refuse them, so it is lifted for the browser tests alone (Playwright's documented advice).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    serialized = {
        alias: connections[alias]._test_serialized_contents
        for alias in connections
        if hasattr(connections[alias], "_test_serialized_contents")
    }
    try:
        with sync_playwright() as playwright:
            # With that loop marked running, Django keeps this thread's connections in a context-local store:
            # new connection objects. Hand them the migrated contents pytest-django serialized, so each test's
            # serialized rollback still restores the groups and permissions the migrations created.
            for alias, contents in serialized.items():
                connections[alias]._test_serialized_contents = contents
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def _hub_server_thread(django_db_setup, django_db_blocker):
    from hub.asgi import build_application

    # Started after the test database exists, so the server's connections open the test database.
    server = HubServer(build_application(run_embedded=False))
    yield server
    server.stop()


@pytest.fixture
def hub_server(_hub_server_thread, transactional_db, django_db_serialized_rollback) -> str:
    """The base URL of the hub under test; the test's writes are committed, so the server sees them."""
    return _hub_server_thread.url


@pytest.fixture
def new_page(request, chromium, hub_server):
    """``new_page(viewport=DESKTOP, **context_options)`` → a page in its own browser context, closed after the test.

    ``context_options`` go to Playwright's ``Browser.new_context`` (e.g. ``has_touch=True, is_mobile=True``).
    """
    contexts = []
    server_host = urlsplit(hub_server).netloc

    def make(viewport: dict | None = None, **context_options):
        context = chromium.new_context(viewport=viewport or DESKTOP, base_url=hub_server, **context_options)
        context.set_default_timeout(10_000)
        context.hub_external_requests = []

        def only_the_test_server(route):
            if urlsplit(route.request.url).netloc == server_host:
                route.continue_()
            else:
                context.hub_external_requests.append(route.request.url)
                route.abort()

        context.route("**/*", only_the_test_server)
        contexts.append(context)
        return context.new_page()

    yield make

    report = getattr(request.node, "hub_report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        stem = artifact_name(request.node.nodeid)
        for number, open_page in enumerate(page for context in contexts for page in context.pages):
            path = ARTIFACTS / f"{stem}-{number}.png"
            open_page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failing page: {path}")
    external = [url for context in contexts for url in context.hub_external_requests]
    for context in contexts:
        context.close()
    if external:
        pytest.fail(f"a page tried to reach beyond the test server: {external}")


@pytest.fixture
def page(new_page):
    return new_page(DESKTOP)


@pytest.fixture
def hub_user(hub_server):
    """``hub_user(username, staff=False)`` → a user of group ``household`` (or ``staff``) with ``PASSWORD``."""
    from django.contrib.auth.models import Group, User

    def make(username: str = "alice", *, staff: bool = False):
        user = User.objects.create_user(username, password=PASSWORD)
        user.groups.add(Group.objects.get(name="staff" if staff else "household"))
        return user

    return make


@pytest.fixture
def signed_in_page(new_page, hub_user):
    """``signed_in_page(user=None, viewport=DESKTOP)`` → a new page signed in through the login form."""

    def make(user=None, *, viewport: dict | None = None):
        user = user or hub_user()
        signed_in = new_page(viewport)
        login(signed_in, user)
        return signed_in

    return make


@pytest.fixture
def event_pipeline(hub_server, settings):
    """The outbox relay and the events.notify consumer on the in-memory bus (names of this test's own), so a
    change's heating.room_changed reaches every open page as in the embedded hub."""
    from messaging import relay as relay_module
    from messaging.consumers_amqp import EventsNotifyConsumer

    prefix = f"rooms-{uuid.uuid4().hex[:8]}"
    settings.AMQP_URL = "memory://"
    settings.EVENTS_EXCHANGE = f"{prefix}.ce"
    settings.EVENTS_DB_QUEUE = f"{prefix}.db"
    settings.EVENTS_NOTIFY_QUEUE = f"{prefix}.notify"
    settings.EVENTS_DEAD_LETTER_QUEUE = f"{prefix}.dead"
    # The embedded default's own timings: a commit wakes the relay in its process, no fast polling helps.
    relay = relay_module.OutboxRelay()
    notify = EventsNotifyConsumer(amqp_url="memory://")
    notify.start()
    relay.start()
    yield
    relay.stop(timeout=5)
    notify.stop(timeout=5)
