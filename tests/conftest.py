"""Fixtures every test may use: real-service URLs, a TCP proxy for fault tests, the PostgreSQL run, and users."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from tests.support.services import require_service
from tests.support.tcp_proxy import TcpProxy
from tests.support.users import USER_PASSWORD

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


@pytest.fixture
def household_user(db) -> User:
    """Alice, in the household group (what a family member's account is)."""
    user = User.objects.create_user(
        "alice", email="alice@example.test", password=USER_PASSWORD, first_name="Alice", last_name="Liddell"
    )
    user.groups.add(Group.objects.get(name="household"))
    return user


@pytest.fixture
def staff_user(db) -> User:
    """Bob, staff (the flag and the group): he runs the downloads and reads every endpoint."""
    user = User.objects.create_user("bob", email="bob@example.test", password=USER_PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="staff"))
    return user


@pytest.fixture
def client_as(client):
    """``client_as(user)`` → the test client with ``user`` signed in (pytest-django's ``admin_client`` for admins)."""

    def sign_in(user: User):
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture
def oauth_application(db) -> Application:
    return Application.objects.create(
        name="script",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_DEVICE_CODE,
    )


@pytest.fixture
def bearer(oauth_application):
    """``bearer(user, "events:read", expires_in=...)`` → headers for the test client carrying a fresh token."""
    counter = iter(range(1_000_000))

    def make(user: User, scope: str, *, expires_in: timedelta = timedelta(hours=1)) -> dict[str, str]:
        raw = f"test-token-{next(counter)}-{user.pk}"
        token = AccessToken(user=user, application=oauth_application, scope=scope, expires=timezone.now() + expires_in)
        set_token_value(token, raw)  # hashed at rest, as the token endpoint stores it
        token.save()
        return {"Authorization": f"Bearer {raw}"}

    return make


@pytest.fixture
def memory_bus():
    """A fresh in-memory live-push bus for this test (the web process's default one again afterwards)."""
    from tests.messaging.push_support import memory_bus_in_use

    with memory_bus_in_use() as bus:
        yield bus


@pytest.fixture
def grants_db(transactional_db):
    """A transactional database with the groups and topic grants the data migrations create."""
    from tests.messaging.push_support import ensure_default_grants

    ensure_default_grants()


@pytest.fixture
def redis_layer(redis_url):
    """The process's default channel layer on the real Redis under a prefix of this test's own, as production has
    it between web and bridge; yields a maker of more layers on the same prefix."""
    import uuid

    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
    from channels_redis.core import RedisChannelLayer

    prefix = f"test-layer-{uuid.uuid4().hex[:8]}"

    def make() -> RedisChannelLayer:
        return RedisChannelLayer(hosts=[{"address": redis_url, "socket_timeout": None}], prefix=prefix)

    previous = channel_layers.set(DEFAULT_CHANNEL_LAYER, make())
    yield make
    if previous is None:
        # None means "not built yet": putting None back would leave every later test with no channel layer.
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    else:
        channel_layers.set(DEFAULT_CHANNEL_LAYER, previous)
