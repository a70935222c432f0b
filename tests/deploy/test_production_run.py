"""The compose file's commands and health checks, run for real in production mode against the local services.

No Docker engine runs here, so each service's command is taken from docker-compose.yml and run as a process
with the environment compose would give it — the container host names swapped for the local PostgreSQL,
Redis, RabbitMQ and Mosquitto (a fresh database, event-bus names of its own). Then its health check, also
taken from the compose file, must pass.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
SERVICES = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())["services"]

pytestmark = [pytest.mark.services, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="module")
def fresh_database(postgres_url):
    import psycopg

    name = f"hub_compose_{secrets.token_hex(4)}"
    admin_url = with_database(postgres_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield with_database(postgres_url, name)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def event_bus_names(amqp_url):
    """Exchange and queue names of this module's own, removed from the shared broker afterwards."""
    suffix = secrets.token_hex(4)
    names = {
        "EVENTS_EXCHANGE": f"test-compose-ce-{suffix}",
        "EVENTS_TOPIC_EXCHANGE": f"test-compose-topic-{suffix}",
        "EVENTS_DB_QUEUE": f"test-compose-db-{suffix}",
        "EVENTS_NOTIFY_QUEUE": f"test-compose-notify-{suffix}",
        "EVENTS_DEAD_LETTER_EXCHANGE": f"test-compose-dlx-{suffix}",
        "EVENTS_DEAD_LETTER_QUEUE": f"test-compose-dead-{suffix}",
        "MQTT_BRIDGE_QUEUE": f"test-compose-mqtt-{suffix}",
    }
    yield names
    from kombu import Connection, Exchange, Queue

    with Connection(amqp_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for variable, name in names.items():
            with contextlib.suppress(Exception):
                if variable.endswith("QUEUE"):
                    Queue(name, channel=channel).delete()
                else:
                    Exchange(name, channel=channel).delete()


@pytest.fixture(scope="module")
def production_environment(tmp_path_factory, fresh_database, redis_url, amqp_url, mqtt_url, event_bus_names):
    """What compose gives a hub container, pointed at the local services; STATIC_ROOT moved into a temp dir."""
    home = tmp_path_factory.mktemp("production")
    (home / "downloads").mkdir()
    # STATIC_ROOT is fixed to the project's staticfiles/ (the `static` volume's mount point in the image);
    # a settings module on top of the real one moves it so the test leaves the work tree alone.
    settings_override = f"from hub.settings import *  # noqa: F403\nSTATIC_ROOT = {str(home / 'static')!r}\n"
    (home / "compose_test_settings.py").write_text(settings_override)
    compose_environment = SERVICES["web"]["environment"]
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUB_", "DJANGO_", "DOWNLOADS_", "EVENTS_", "SYSLOG_", "MQTT_"))
        and key not in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "MQTT_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY")
    }
    local = {
        "HUB_MODE": compose_environment["HUB_MODE"],
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "hub.example.org",
        "HUB_TIME_ZONE": "Europe/Berlin",
        "DATABASE_URL": fresh_database,
        "REDIS_URL": redis_url,
        "AMQP_URL": amqp_url,
        "MQTT_URL": mqtt_url,
        "DOWNLOADS_ROOT": str(home / "downloads"),
        "DOWNLOADS_ACCEL_LOCATION": compose_environment["DOWNLOADS_ACCEL_LOCATION"],
        # The edge volumes (nginx's markers and its JSON log of what it served itself), as temp folders here.
        "DOWNLOADS_EDGE_DIR": str(home / "edge"),
        "DOWNLOADS_EDGE_LOG": str(home / "edge-log" / "downloads.json.log"),
    }
    (home / "edge").mkdir()
    (home / "edge-log").mkdir()
    assert set(local) == set(compose_environment), "this test sets what compose sets, no more, no less"
    environ.update(
        local,
        **event_bus_names,
        # `python`, `celery` and `uvicorn` in the compose commands are this virtual env's, as in the image.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        # A container's host name: Celery names its worker after it, and the worker's health check pings it.
        HOSTNAME=f"compose-test-{secrets.token_hex(4)}",
        HUB_VAR_DIR=str(home),
        DJANGO_SETTINGS_MODULE="compose_test_settings",
        PYTHONPATH=os.pathsep.join([str(home), str(PROJECT_DIR)]),
    )
    return environ, home


def compose_argv(service: str, *, port: int | None = None) -> list[str]:
    """The service's command from docker-compose.yml (its own port swapped for a free one), defaults filled in."""
    command = SERVICES[service]["command"]
    argv = [re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", arg) for arg in command]
    if port is not None:
        swaps = {"--host=0.0.0.0": "--host=127.0.0.1", "--port=8000": f"--port={port}"}
        argv = [swaps.get(arg, arg) for arg in argv]
    return argv


def health_check_argv(service: str, *, port: int | None = None) -> list[str]:
    """The service's health check from docker-compose.yml; a CMD-SHELL one runs through sh, as Docker does."""
    kind, *rest = SERVICES[service]["healthcheck"]["test"]
    argv = ["sh", "-c", rest[0].replace("$$", "$")] if kind == "CMD-SHELL" else rest
    if port is not None:
        argv = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in argv]
    return argv


def run(argv: list[str], environ: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=PROJECT_DIR, env=environ, capture_output=True, text=True, timeout=timeout)


def wait_healthy(service: str, environ: dict[str, str], process: subprocess.Popen, *, port=None, within=60.0):
    deadline = time.monotonic() + within
    while True:
        result = run(health_check_argv(service, port=port), environ, timeout=30)
        if result.returncode == 0:
            return
        assert process.poll() is None, f"{service} exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{service} not healthy within {within:.0f} s: {result.stderr}"
        time.sleep(0.5)


def start(service: str, environ: dict[str, str], log: Path, *, port=None, extra=()) -> subprocess.Popen:
    argv = [*compose_argv(service, port=port), *extra]
    with log.open("w") as output:
        return subprocess.Popen(argv, cwd=PROJECT_DIR, env=environ, stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("did not stop within 20 s of SIGTERM")


@pytest.fixture(scope="module")
def initialised(production_environment):
    """The init service's command, exactly as compose runs it (sh -c "migrate && collectstatic && setup")."""
    environ, home = production_environment
    command = SERVICES["init"]["command"]
    assert command[:2] == ["sh", "-c"]
    result = run(command, environ, timeout=300)
    assert result.returncode == 0, f"init failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return environ, home, result.stdout


def test_the_init_service_migrates_collects_static_files_and_declares_the_event_bus(initialised, amqp_url):
    environ, home, _ = initialised
    assert (home / "static" / "staticfiles.json").exists(), "whitenoise's manifest for production"
    assert any((home / "static" / "admin").rglob("*.css"))
    migrated = run(["python", "manage.py", "migrate", "--check"], environ, timeout=120)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    from kombu import Connection, Queue

    with Connection(amqp_url, connect_timeout=5) as connection:
        declared = Queue(environ["EVENTS_DB_QUEUE"], channel=connection.default_channel).queue_declare(passive=True)
        assert declared.queue == environ["EVENTS_DB_QUEUE"]


def test_the_web_service_serves_in_production_mode_and_passes_its_health_check(initialised):
    environ, home, _ = initialised
    port = free_port()
    process = start("web", environ, home / "web.log", port=port)
    try:
        wait_healthy("web", environ, process, port=port)
    finally:
        code = stop(process)
    assert code in (0, -signal.SIGTERM), (home / "web.log").read_text()


def test_the_relay_consumers_mqtt_bridge_and_edge_log_reader_run_and_pass_their_health_checks(initialised):
    environ, home, _ = initialised
    services = ["relay", "consumer-db", "consumer-notify", "mqtt-bridge", "edge-log"]
    processes = {service: start(service, environ, home / f"{service}.log") for service in services}
    try:
        for service, process in processes.items():
            wait_healthy(service, environ, process)
    finally:
        codes = {service: stop(process) for service, process in processes.items()}
    for service, code in codes.items():
        assert code == 0, f"{service} did not stop cleanly:\n" + (home / f"{service}.log").read_text()[-3000:]


def test_celery_beat_passes_its_health_check_while_the_broker_answers(initialised):
    environ, home, _ = initialised
    # Its own schedule file: other test runs on this machine may run a beat with the compose path too.
    process = start("celery-beat", environ, home / "beat.log", extra=[f"--schedule={home / 'beat-schedule'}"])
    try:
        wait_healthy("celery-beat", environ, process)
    finally:
        stop(process)
    unreachable = {**environ, "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}//"}
    assert run(health_check_argv("celery-beat"), unreachable, timeout=60).returncode != 0


def test_the_celery_worker_answers_its_health_check_ping(initialised):
    environ, home, _ = initialised
    # In a container the worker is named after the host name; here the same is said explicitly, and it
    # listens on a queue of its own so it takes no task from other test runs on the shared broker.
    own = ["--hostname=celery@" + environ["HOSTNAME"], "--queues=" + environ["HOSTNAME"]]
    process = start("celery-worker", environ, home / "worker.log", extra=own)
    try:
        wait_healthy("celery-worker", environ, process)
    finally:
        stop(process)
    other_host = {**environ, "HOSTNAME": "compose-test-nobody"}
    assert run(health_check_argv("celery-worker"), other_host, timeout=60).returncode != 0
