"""Strict readers for settings that come from the environment.

Every reader raises ``ImproperlyConfigured`` naming the variable when its value
is malformed, so a typo stops start-up instead of running with a surprise.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Env:
    """Reads typed values from a mapping (``os.environ`` by default)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def is_set(self, name: str) -> bool:
        return self.raw(name) is not None

    def str(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None else value

    def str_or_empty(self, name: str, default: str) -> str:
        """Like ``str`` but an empty value counts as set (for prefixes where empty means "none")."""
        value = self._environ.get(name)
        return default if value is None else value.strip()

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise self._error(name, value, "expected one of true/false, yes/no, on/off, 1/0")

    def int(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise self._error(name, value, "expected a whole number") from None
        if minimum is not None and number < minimum:
            raise self._error(name, value, f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise self._error(name, value, f"must be at most {maximum}")
        return number

    def float(self, name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
        """A finite decimal number (``0.3``, ``180``) within its bounds."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise self._error(name, value, "expected a number") from None
        if not math.isfinite(number):
            raise self._error(name, value, "expected a finite number")
        if minimum is not None and number < minimum:
            raise self._error(name, value, f"must be at least {minimum:g}")
        if maximum is not None and number > maximum:
            raise self._error(name, value, f"must be at most {maximum:g}")
        return number

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value not in choices:
            raise self._error(name, value, f"expected one of {', '.join(choices)}")
        return value

    def list(self, name: str, default: list[str] | None = None) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default or [])
        return [item.strip() for item in value.split(",") if item.strip()]

    def parsed(self, name: str, parse: Callable[[str], object], default: object, hint: str) -> object:
        """Apply ``parse`` to the value; any ValueError becomes a message naming the variable."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            raise self._error(name, value, f"{hint} ({exc})") from None

    def hex(self, name: str, default: str, *, digits: int) -> str:
        value = self.str(name, default)
        try:
            int(value, 16)
        except ValueError:
            raise self._error(name, value, f"expected {digits} hexadecimal digits") from None
        if len(value) != digits:
            raise self._error(name, value, f"expected {digits} hexadecimal digits")
        return value.upper()

    @staticmethod
    def _error(name: str, value: str, why: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{name}={value!r} is not valid: {why}")


# Django's yardstick for a guessable key (`manage.py check --deploy`, security.W009).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
SECRET_KEY_INSECURE_PREFIX = "django-insecure-"


def secret_key_weakness(key: str) -> str | None:
    """Why ``key`` is too weak to sign a public hub's sessions and links, or ``None``; never quotes the key."""
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(key)} characters, fewer than {SECRET_KEY_MIN_LENGTH}"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"it has {len(set(key))} distinct characters, fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS}"
    if key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"it starts with {SECRET_KEY_INSECURE_PREFIX!r}, the mark of a key Django made for development"
    return None


def production_refusals(*, secret_key: str, allowed_hosts: list[str], amqp_url: str) -> list[str]:
    """What ``HUB_MODE=production`` refuses to start with, one sentence per variable (empty: nothing)."""
    refusals = []
    weakness = secret_key_weakness(secret_key)
    if weakness:
        refusals.append(
            f"SECRET_KEY is too weak: {weakness}. Set a new random one (e.g. the output of "
            "`openssl rand -base64 48`) and move the old key into "
            "SECRET_KEY_FALLBACKS, so download links, sessions and password-reset links made under it keep "
            "working until they expire"
        )
    if "*" in allowed_hosts:
        refusals.append(
            "ALLOWED_HOSTS='*' admits any Host header, and the hub builds the links it sends from it: "
            "list the names the hub is reached by (e.g. hub.example.org)"
        )
    if amqp_url.partition("://")[0].lower() == "memory":
        refusals.append(
            f"AMQP_URL={amqp_url!r} keeps Celery tasks and events in one process's memory, lost at every "
            "restart and unseen by the other processes: point it at RabbitMQ (amqp://user:password@host:5672/vhost)"
        )
    return refusals


def parse_bind(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8000`` for IPv6) into its host and port."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError("expected host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port, 10)
    if not 0 < number < 65536:
        raise ValueError("port out of range")
    return host, number


def parse_published_port(value: str) -> str:
    """A host port as compose publishes it: ``1883``, or ``address:1883`` for one interface; returned as given."""
    host, _sep, port = value.rpartition(":")
    if not port.isascii() or not port.isdigit():
        raise ValueError("not a port number")
    if not 0 < int(port) < 65536:
        raise ValueError("port out of range")
    if host and host.strip("[]") != "0.0.0.0":
        ipaddress.ip_address(host.strip("[]"))  # ValueError names what is wrong
    return value


def parse_hub_id(value: str) -> str:
    """A hub id for Home Assistant's discovery: 1 to 32 of a-z, 0-9, '_' and '-' (it is part of entity ids)."""
    if not re.fullmatch(r"[a-z0-9_-]{1,32}", value):
        raise ValueError("not 1 to 32 of a-z, 0-9, '_' and '-'")
    return value


def parse_time_zone(value: str) -> str:
    """An IANA zone name the zone database knows (``Europe/Madrid``), returned as given."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone") from None
    return value


SYSTEM_LOCALTIME = Path("/etc/localtime")


def system_time_zone(localtime: Path = SYSTEM_LOCALTIME) -> str:
    """The IANA name of the machine's zone: where ``/etc/localtime`` links to (…/zoneinfo/Europe/Berlin →
    ``Europe/Berlin``), else ``UTC`` (no link, a copied file, or a name the zone database does not know)."""
    try:
        # One link deep, not resolve(): inside the zone database some names link on to others (posix/…, UTC).
        target = os.path.normpath(os.path.join(localtime.parent, os.readlink(localtime)))
    except OSError:  # absent, or a regular file (a copy of the zone's data, which carries no name)
        return "UTC"
    _before, marker, name = target.rpartition("/zoneinfo/")
    name = name.removeprefix("posix/")  # the same zones, under the name people use
    if not marker or not name:
        return "UTC"
    try:
        return parse_time_zone(name)
    except ValueError:
        return "UTC"


#: EMAIL_URL's schemes: Django's backend, the default port, and how the connection is secured.
_EMAIL_SCHEMES = {
    "smtp": ("django.core.mail.backends.smtp.EmailBackend", 25, ""),
    "smtp+tls": ("django.core.mail.backends.smtp.EmailBackend", 587, "tls"),  # STARTTLS
    "submission": ("django.core.mail.backends.smtp.EmailBackend", 587, "tls"),
    "smtps": ("django.core.mail.backends.smtp.EmailBackend", 465, "ssl"),  # TLS from the first byte
    "console": ("django.core.mail.backends.console.EmailBackend", 0, ""),
    "locmem": ("django.core.mail.backends.locmem.EmailBackend", 0, ""),
    "dummy": ("django.core.mail.backends.dummy.EmailBackend", 0, ""),
}


def parse_email_url(value: str) -> dict[str, object]:
    """``smtp+tls://user:password@mail.example.org:587`` into Django's EMAIL_* settings (a dict of them).

    Schemes: ``smtp`` (plain, 25), ``smtp+tls``/``submission`` (STARTTLS, 587), ``smtps`` (TLS, 465), and
    ``console://``, ``locmem://``, ``dummy://`` for Django's backends of those names. User and password are
    percent-decoded (a ``@`` in a password is ``%40``).
    """
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in _EMAIL_SCHEMES:
        raise ValueError(f"unknown scheme {parts.scheme!r}; expected one of {', '.join(_EMAIL_SCHEMES)}")
    backend, default_port, security = _EMAIL_SCHEMES[scheme]
    settings: dict[str, object] = {"EMAIL_BACKEND": backend}
    if not default_port:
        return settings
    if not parts.hostname:
        raise ValueError("no mail server host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("port out of range or not a number") from None
    settings.update(
        EMAIL_HOST=parts.hostname,
        EMAIL_PORT=port,
        EMAIL_HOST_USER=unquote(parts.username or ""),
        EMAIL_HOST_PASSWORD=unquote(parts.password or ""),
        EMAIL_USE_TLS=security == "tls",
        EMAIL_USE_SSL=security == "ssl",
    )
    return settings
