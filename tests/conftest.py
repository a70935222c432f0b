"""Fixtures every test may use: real-service URLs, a TCP proxy for fault tests, and the PostgreSQL run."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.services import require_service
from tests.support.tcp_proxy import TcpProxy


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
