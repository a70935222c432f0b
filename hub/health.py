"""The /healthz registry.

Critical checks are the web process's own dependencies (database, channel
layer): one failing makes /healthz answer 503. Every other check (broker, MQTT,
modem link, worker heartbeats) only makes the report ``degraded`` with a 200.
Apps register checks from ``AppConfig.ready``; ``hub`` imports no app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""


Check = Callable[[], CheckResult]


@dataclass(frozen=True)
class _Registered:
    check: Check
    critical: bool


_checks: dict[str, _Registered] = {}


def register_check(name: str, check: Check, *, critical: bool = False) -> None:
    _checks[name] = _Registered(check, critical)


def unregister_check(name: str) -> None:
    _checks.pop(name, None)


def register_heartbeat(name: str) -> None:
    """Report worker ``name`` as degraded when its heartbeat is missing or older than twice its interval."""
    register_check(f"worker:{name}", lambda: heartbeat_check(name))


def heartbeat_check(name: str) -> CheckResult:
    from hub.selectors import heartbeat_get

    beat = heartbeat_get(name)
    if beat is None:
        return CheckResult(False, "no heartbeat yet")
    age = timezone.now() - beat.beat_at
    if age > timedelta(seconds=2 * beat.interval_seconds):
        return CheckResult(False, f"last heartbeat {age.total_seconds():.0f} s ago")
    return CheckResult(True, f"last heartbeat {age.total_seconds():.0f} s ago")


def database_check() -> CheckResult:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return CheckResult(True)


def channel_layer_check() -> CheckResult:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return CheckResult(False, "no channel layer configured")
    # A round trip through the layer proves Redis (or the in-memory layer) answers.
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)(channel, {"type": "health.ping"})
    async_to_sync(layer.receive)(channel)
    return CheckResult(True, type(layer).__name__)


def register_builtin_checks() -> None:
    register_check("database", database_check, critical=True)
    register_check("channel_layer", channel_layer_check, critical=True)


def run_checks() -> tuple[str, dict[str, dict]]:
    """Run every check; return the overall status (ok / degraded / down) and each check's result."""
    report: dict[str, dict] = {}
    status = "ok"
    for name, registered in _checks.items():
        try:
            result = registered.check()
        except Exception as exc:
            logger.warning("health check %s failed: %s", name, exc)
            result = CheckResult(False, f"{type(exc).__name__}: {exc}")
        report[name] = {"ok": result.ok, "critical": registered.critical, "detail": result.detail}
        if not result.ok:
            status = "down" if registered.critical else ("degraded" if status == "ok" else status)
    return status, report
