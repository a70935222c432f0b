"""What the benchmarks that measure the hub in a child process share (not a benchmark itself: its name starts with _).

Such a benchmark's ``main`` makes a scratch database (a fresh SQLite file in a temporary folder, or a scratch
PostgreSQL database), runs ``python -m bench.<name> --child`` on it (:func:`run_child`), and the child sets Django up
on that database (:func:`setup_django`), measures, and prints its figures as one JSON line, which :func:`run_child`
returns. So the hub's settings, migrations and caches are the child's alone, never the caller's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


def sqlite_url(workdir: str) -> str:
    """A fresh SQLite database in the benchmark's temporary folder."""
    return f"sqlite:///{workdir}/hub.sqlite3"


def run_child(
    module: str, *, database_url: str, workdir: str, env: dict[str, str] | None = None, timeout: float = 600
) -> dict:
    """``python -m <module> --child`` on ``database_url`` (the embedded hub, no serial port, ``workdir`` its var
    folder, plus ``env``): the last JSON line it prints, or RuntimeError with its output when it printed none."""
    child_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HUB_VAR_DIR": workdir,
        "HUB_MODE": "embedded",
        **(env or {}),
    }
    child_env.pop("SERIAL_PORT", None)
    result = subprocess.run(
        [sys.executable, "-m", module, "--child"],
        cwd=PROJECT_DIR,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"the benchmark child {module} failed:\n{result.stdout}\n{result.stderr[-3000:]}")


def setup_django() -> None:
    """In the child: Django set up on the scratch database and migrated, warnings and below not logged (they would
    be timed too)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def scratch_postgres(prefix: str = "bench") -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database named ``<prefix>_<random>`` on ``BENCH_POSTGRES_URL``'s server: its URL and
    the function that drops it. (bench/rooms_history.py calls it through bench.heating, with no prefix.)"""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}")), drop


def simulated_radio(*, thermostat_for: Callable | None = None, **network_options) -> tuple:
    """In the child: (the simulated network on a local TCP port (channel 0, 50 ms guard and boot; ``network_options``
    for the rest), the real ``SerialWorker`` reading it over ``socket://`` with the modem's real timings but for the
    start-up guard), both started, for the caller to stop. The worker's thermostat is ``thermostat_for(network)``
    when given (a runner on the simulator's clock), else the hub's default."""
    from heating.modem import ModemTimings, NetworkSettings
    from heating.simulator import SimulatedNetwork
    from heating.worker import READ_POLL_INTERVAL, SerialWorker, WorkerTimings

    simulated = SimulatedNetwork(tcp=("127.0.0.1", 0), guard_time=0.05, boot_time=0.05, channel=0, **network_options)
    simulated.start()
    worker = SerialWorker(
        "socket://{}:{}".format(*simulated.tcp_address),
        network=NetworkSettings(channel=0),
        timings=WorkerTimings(heartbeat_interval=5.0),
        # The modem's real timings, but for the start-up guard (the simulator's is 50 ms here).
        modem_timings=ModemTimings(command_guard=0.08, reset_pulse=0.0, poll_interval=READ_POLL_INTERVAL),
        thermostat=thermostat_for(simulated) if thermostat_for is not None else None,
    )
    worker.start()
    return simulated, worker
