"""The /healthz registry.

Critical checks are the web process's own dependencies (database, channel
layer): one failing makes /healthz answer 503. Every other check (broker, MQTT,
modem link, worker heartbeats) only makes the report ``degraded`` with a 200.
Apps register checks from ``AppConfig.ready``; ``hub`` imports no app.

Anyone may ask how the hub is (the overall status, each check's name and whether it is ok); a check's
detail (broker vhost, error texts, serial port, counters) is only for staff and for the container's own
probe on loopback (:func:`details_allowed`).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone

from hub.api.scopes import api_scopes
from hub.roles import user_is_staff

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


def mqtt_lan_plain_check() -> CheckResult:
    from django.conf import settings

    # Not a fault (the operator chose it for devices without TLS), but whoever reads the report should know.
    return CheckResult(
        True,
        f"plain MQTT (no TLS) is published on the LAN at {settings.MQTT_LAN_PLAIN_PORT} (MQTT_LAN_PLAIN_PORT): "
        "passwords and messages sent there cross the network in clear",
    )


def register_builtin_checks() -> None:
    from django.conf import settings

    register_check("database", database_check, critical=True)
    register_check("channel_layer", channel_layer_check, critical=True)
    if settings.MQTT_LAN_PLAIN_PORT:
        register_check("mqtt_lan_plain", mqtt_lan_plain_check)


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


# Headers a proxy adds: their presence means the request came through one, however local its TCP peer.
_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def details_allowed(request) -> bool:
    """Whether ``request`` may read each check's detail: staff (session or token) or a local probe."""
    if _is_local_probe(request):
        return True
    user = getattr(request, "user", None)
    if user is not None and user_is_staff(user):
        return True
    return _staff_token_with_read_scope(request)


def _is_local_probe(request) -> bool:
    # The compose health checks and `make run`'s own machine: a loopback peer that no proxy stands in front of.
    # Behind nginx the peer may look local too (uvicorn writes the client's address there), but nginx always
    # sends X-Forwarded-For and X-Real-IP.
    if any(name in request.META for name in _FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "").is_loopback
    except ValueError:
        return False


def _staff_token_with_read_scope(request) -> bool:
    if not request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("bearer "):
        return False
    from oauth2_provider.oauth2_backends import get_oauthlib_core

    valid, oauth_request = get_oauthlib_core().verify_request(request, scopes=[])
    if not valid or not user_is_staff(oauth_request.user):
        return False
    held = set((oauth_request.access_token.scope or "").split())
    known = api_scopes()
    return "read" in held or any(scope.endswith(":read") and scope in known for scope in held)


def without_details(report: dict[str, dict]) -> dict[str, dict]:
    """What anyone may see of a report: each check's name and whether it is ok."""
    return {name: {"ok": result["ok"]} for name, result in report.items()}
