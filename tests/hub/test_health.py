"""/healthz: the status rules, and who may read each check's detail.

The Django test client's requests come from 127.0.0.1 without forwarded headers: the container's own health
check, which sees every detail. A request from anywhere else is made with ``REMOTE_ADDR`` set.
"""

import pytest
from django.db import DatabaseError

from hub import health
from hub.services import heartbeat_record

# Every check the apps register, as the web process has them (taken before any test empties the registry).
ALL_CHECKS = dict(health._checks)
LAN = {"REMOTE_ADDR": "192.168.1.23"}
# What the real checks have been seen to tell: a broker's vhost, error texts, the modem's port, counters.
REVEALING = {
    "broker": health.CheckResult(False, "OperationalError: [Errno 111] Connection refused (amqp://rabbitmq:5672/hub)"),
    "heating:modem_link": health.CheckResult(True, "link up on /dev/ttyUSB0, 3 decode errors"),
    "outbox": health.CheckResult(True, "1234 published since start"),
}


@pytest.fixture(autouse=True)
def only_the_web_process_checks(monkeypatch):
    """Start from the hub's own checks: the apps' worker checks would report their idle workers here."""
    monkeypatch.setattr(health, "_checks", {})
    health.register_builtin_checks()


@pytest.fixture
def extra_check():
    names = []

    def add(name, check, *, critical=False):
        names.append(name)
        health.register_check(name, check, critical=critical)

    yield add
    for name in names:
        health.unregister_check(name)


@pytest.mark.django_db
def test_healthz_is_ok_when_every_dependency_answers(client):
    """The container's health check (loopback, no proxy headers) reads the status and every detail."""
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True


@pytest.mark.django_db
def test_a_failing_non_critical_check_degrades_but_answers_200(client, extra_check):
    extra_check("broker", lambda: health.CheckResult(False, "connection refused"))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["broker"]["detail"] == "connection refused"


@pytest.mark.django_db
def test_a_failing_own_dependency_answers_503(client, extra_check):
    def broken():
        raise DatabaseError("no such host")

    extra_check("database-replica", broken, critical=True)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert "no such host" in response.json()["checks"]["database-replica"]["detail"]


@pytest.mark.django_db
def test_a_worker_heartbeat_is_degraded_until_it_beats_and_again_when_stale(client, extra_check):
    health.register_heartbeat("relay")
    try:
        assert client.get("/healthz").json()["checks"]["worker:relay"]["ok"] is False
        heartbeat_record(name="relay", interval_seconds=30)
        assert client.get("/healthz").json()["checks"]["worker:relay"]["ok"] is True
        heartbeat_record(name="relay", interval_seconds=0.0001)
        body = client.get("/healthz").json()
        assert body["checks"]["worker:relay"]["ok"] is False
        assert body["status"] == "degraded"
    finally:
        health.unregister_check("worker:relay")


# --- who sees the details ----------------------------------------------------------------------------------


@pytest.fixture
def revealing_checks(extra_check):
    for name, result in REVEALING.items():
        extra_check(name, lambda result=result: result)


def assert_no_details(response):
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {
        "database": {"ok": True},
        "channel_layer": {"ok": True},
        "broker": {"ok": False},
        "heating:modem_link": {"ok": True},
        "outbox": {"ok": True},
    }
    text = response.content.decode()
    for revealing in ("rabbitmq", "/hub", "Connection refused", "ttyUSB0", "1234", "decode errors"):
        assert revealing not in text


def assert_details(response):
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["broker"]["detail"] == REVEALING["broker"].detail
    assert checks["heating:modem_link"]["detail"] == "link up on /dev/ttyUSB0, 3 decode errors"
    assert checks["outbox"] == {"ok": True, "critical": False, "detail": "1234 published since start"}


@pytest.mark.django_db
def test_an_anonymous_request_gets_the_status_and_each_checks_state_but_no_detail(client, revealing_checks):
    assert_no_details(client.get("/healthz", **LAN))


@pytest.mark.django_db
def test_every_check_the_apps_register_hides_its_detail_from_an_anonymous_request(client, monkeypatch):
    monkeypatch.setattr(health, "_checks", dict(ALL_CHECKS))
    assert {"database", "broker", "outbox", "heating:modem_link"} <= set(ALL_CHECKS)
    local = client.get("/healthz").json()["checks"]
    assert any(result["detail"] for result in local.values()), "the apps' checks do have details to hide"
    anonymous = client.get("/healthz", **LAN).json()["checks"]
    assert set(anonymous) == set(local)
    assert all(result == {"ok": local[name]["ok"]} for name, result in anonymous.items())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forwarded",
    [
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_X_REAL_IP": "127.0.0.1"},
        {"HTTP_FORWARDED": "for=127.0.0.1"},
        {"HTTP_X_FORWARDED_FOR": ""},
    ],
    ids=["x-forwarded-for", "x-real-ip", "forwarded", "empty x-forwarded-for"],
)
def test_a_loopback_peer_that_came_through_a_proxy_gets_no_detail(client, revealing_checks, forwarded):
    assert_no_details(client.get("/healthz", **forwarded))


@pytest.mark.django_db
def test_a_signed_in_staff_user_gets_the_details_and_a_household_user_does_not(
    client, revealing_checks, staff_user, household_user
):
    client.force_login(household_user)
    assert_no_details(client.get("/healthz", **LAN))
    client.force_login(staff_user)
    assert_details(client.get("/healthz", **LAN))


@pytest.mark.django_db
@pytest.mark.parametrize("scope", ["heating:read", "read", "events:read write"])
def test_a_staff_token_with_a_read_scope_gets_the_details(client, revealing_checks, staff_user, bearer, scope):
    assert_details(client.get("/healthz", **LAN, headers=bearer(staff_user, scope)))


@pytest.mark.django_db
def test_a_token_without_staff_or_without_a_read_scope_gets_no_detail(
    client, revealing_checks, staff_user, household_user, bearer
):
    assert_no_details(client.get("/healthz", **LAN, headers=bearer(household_user, "heating:read")))
    assert_no_details(client.get("/healthz", **LAN, headers=bearer(staff_user, "heating:write")))
    assert_no_details(client.get("/healthz", **LAN, HTTP_AUTHORIZATION="Bearer not-a-token"))
