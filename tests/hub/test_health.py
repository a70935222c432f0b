import pytest
from django.db import DatabaseError

from hub import health
from hub.services import heartbeat_record


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
