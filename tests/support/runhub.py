"""The hub as a real process: ``manage.py runhub`` (or another command) in a subprocess with a clean environment.

The tests that start one all need the same four things: an environment without the developer's own hub settings,
a migrated SQLite file, the process with its output collected, and a wait until it answers; they live here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

PROJECT_DIR = Path(__file__).resolve().parents[2]

# Settings a developer's shell (or CI) may carry that would change what the child process runs against.
_DROPPED_PREFIXES = ("HUB_", "DJANGO_", "DOWNLOADS_", "SYSLOG_", "EVENTS_", "AXES_", "FORWARDED_")
_DROPPED_NAMES = (
    "DATABASE_URL",
    "REDIS_URL",
    "AMQP_URL",
    "MQTT_URL",
    "SERIAL_PORT",
    "DEBUG",
    "ALLOWED_HOSTS",
    "SECRET_KEY",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_environment(home: Path, *, port: int | None = None, **overrides: str) -> dict[str, str]:
    """``os.environ`` without the hub's own variables, then the embedded default on a SQLite file under ``home``.

    ``port`` sets ``HUB_BIND``; ``overrides`` win over everything (``HUB_VAR_DIR``, ``DATABASE_URL``, …).
    """
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_DROPPED_PREFIXES) and key not in _DROPPED_NAMES
    }
    environ.update(HUB_MODE="embedded", HUB_VAR_DIR=str(home), DATABASE_URL=f"sqlite:///{home / 'hub.sqlite3'}")
    if port is not None:
        environ["HUB_BIND"] = f"127.0.0.1:{port}"
    environ.update(overrides)
    return environ


def manage(environ: dict[str, str], *args: str, timeout: float = 180, check: bool = False):
    """``manage.py <args>`` to completion, its output captured as text."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


class Process:
    """A long-running child (``manage.py <command>`` or any command line), its output collected as it comes."""

    def __init__(self, environ: dict[str, str], *args: str, manage_py: bool = True) -> None:
        command = [sys.executable, "manage.py", *args] if manage_py else list(args)
        self.process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``signum`` and wait for the exit status; a process that ignores it fails the test (and is killed)."""
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            name = signal.Signals(signum).name
            pytest.fail(f"{self.process.args} ignored {name} for {timeout:.0f} s:\n{self.output}")
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.running:
            self.process.kill()
        self.process.wait()
        self._reader.join(timeout=5)


class RunningHub(Process):
    """``manage.py runhub`` on ``port``."""

    def __init__(self, environ: dict[str, str], port: int) -> None:
        super().__init__(environ, "runhub")
        self.base = f"http://127.0.0.1:{port}"

    def answers(self) -> bool:
        assert self.running, f"runhub exited early:\n{self.output}"
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answers; what it says is for the test to judge

    def wait_until_answering(self, timeout: float = 40.0) -> None:
        if not wait_until(self.answers, timeout=timeout, interval=0.1, ignoring=(OSError,)):
            pytest.fail(f"runhub did not answer within {timeout:.0f} s:\n{self.output}")


@contextlib.contextmanager
def killed_afterwards(*processes: Process) -> Iterator[None]:
    """Whatever happens in the block, none of ``processes`` outlives it."""
    try:
        yield
    finally:
        for process in processes:
            process.kill()


@contextlib.contextmanager
def running_hub(environ: dict[str, str], port: int, *, timeout: float = 40.0) -> Iterator[RunningHub]:
    """A started ``runhub`` that answers /healthz; killed after the block if it still runs."""
    hub = RunningHub(environ, port)
    with killed_afterwards(hub):
        hub.wait_until_answering(timeout)
        yield hub
