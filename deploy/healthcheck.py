"""Container health checks for docker-compose.yml (the slim image has no curl).

    python deploy/healthcheck.py http URL       2xx from URL, sent with a Host the hub accepts
    python deploy/healthcheck.py heartbeat NAME  worker NAME's heartbeat row is fresh (hub.health)
    python deploy/healthcheck.py broker          AMQP_URL accepts a connection
    python deploy/healthcheck.py listening PORT  a TCP socket listens on PORT here (looked up, never connected to)

Exit status 0 means healthy; anything else is printed on stderr and exits 1.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def host_header() -> str:
    """The first ALLOWED_HOSTS entry as a concrete name: Django answers 400 to any other Host."""
    first = os.environ.get("ALLOWED_HOSTS", "").split(",")[0].strip().lstrip(".")
    return first if first and first != "*" else "localhost"


def check_http(url: str, timeout: float = 5.0) -> None:
    # No X-Forwarded-For or X-Real-IP: a loopback request without them is what /healthz answers in full.
    request = urllib.request.Request(url, headers={"Host": host_header()})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{url} answered {response.status}")


def check_heartbeat(name: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    from hub.health import heartbeat_check

    result = heartbeat_check(name)
    if not result.ok:
        raise RuntimeError(f"worker {name}: {result.detail}")


def check_broker(timeout: float = 5.0) -> None:
    from kombu import Connection

    with Connection(os.environ.get("AMQP_URL", "memory://"), connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1)


def check_listening(port: str) -> None:
    # Connecting is no probe for a one-client server such as the panStamp simulator: it would replace the client.
    wanted = f":{int(port):04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115 - /proc files are read whole
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A: LISTEN
                return
    raise RuntimeError(f"nothing listens on TCP port {port}")


def main(argv: list[str]) -> int:
    checks = {"http": check_http, "heartbeat": check_heartbeat, "broker": check_broker, "listening": check_listening}
    if not argv or argv[0] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        checks[argv[0]](*argv[1:])
    except (OSError, RuntimeError, urllib.error.URLError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # any other failure is unhealthy too, never a crash with exit 0
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
