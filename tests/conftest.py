"""Fixtures every test may use: real-service URLs, a TCP proxy for fault tests, and the PostgreSQL run."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.services import require_service
from tests.support.tcp_proxy import TcpProxy

BROWSER_TESTS = Path(__file__).resolve().parent / "browser"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # A transactional test's flush empties tables (content types included), and a later lazy lookup re-creates
    # content types under new ids; a serialized rollback (which restores the migrated rows by id) then fails on
    # a unique constraint. So whatever the selection, tests that restore the migrated contents come first: the
    # browser tests, then the others. tryfirst: this runs before pytest-django's own (stable) sort, which then
    # still puts rollback tests before every transactional one.
    def order(item) -> tuple[bool, bool]:
        in_browser = BROWSER_TESTS in Path(item.path).resolve().parents
        return (not in_browser, "django_db_serialized_rollback" not in getattr(item, "fixturenames", ()))

    items.sort(key=order)


@pytest.fixture(scope="session", autouse=True)
def _postgres_run_needs_postgres(request):
    if request.config.getoption("--postgres"):
        require_service("postgres")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_service("postgres")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("redis")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return require_service("amqp")


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    return require_service("mqtt")


@pytest.fixture
def tcp_proxy():
    """``tcp_proxy(url)`` → a :class:`TcpProxy` in front of the service at ``url``; closed after the test."""
    proxies: list[TcpProxy] = []

    def make(url: str) -> TcpProxy:
        parts = urlsplit(url)
        proxy = TcpProxy(parts.hostname, parts.port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
