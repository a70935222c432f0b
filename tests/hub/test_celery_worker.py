"""A real ``celery -A hub worker`` against the real RabbitMQ, logging to a syslog socket this test opens.

The worker runs as production runs it (``HUB_MODE=production``, prefork pool)
with ``SYSLOG_ADDRESS`` pointing at a UDP socket on 127.0.0.1 or a unix
datagram socket, ``SYSLOG_FACILITY=local3``. It loads the two tasks below with
``--include``; they exist only for these tests and never ship.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery, shared_task
from celery.utils.log import get_task_logger
from kombu import Connection

from tests.support.syslog import SyslogReceiver, open_receiver, pri
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FACILITY = "local3"
task_logger = get_task_logger(__name__)


@shared_task(name="tests.celery_worker.log_and_print")
def log_and_print(marker: str) -> None:
    task_logger.warning("task says %s", marker)
    print(f"print says {marker}")


@shared_task(name="tests.celery_worker.die_on_first_delivery", bind=True)
def die_on_first_delivery(self, marker: str) -> None:
    # The guard keeps an accidental eager call from killing the test run itself.
    if os.environ.get("HUB_TEST_WORKER") == "1" and not self.request.delivery_info.get("redelivered"):
        # What the OOM killer does to a pool process in the middle of a task.
        os.kill(os.getpid(), signal.SIGKILL)
    task_logger.warning("ran again after the worker was lost: %s", marker)


@shared_task(name="tests.celery_worker.slow")
def slow(marker: str, seconds: float) -> None:
    task_logger.warning("slow task started: %s", marker)
    time.sleep(seconds)
    task_logger.warning("slow task finished: %s", marker)


@dataclass
class RunningWorker:
    process: subprocess.Popen
    syslog: SyslogReceiver
    queue: str
    client: Celery
    output: Path

    def send(self, task_name: str, *args: object, serializer: str = "json") -> None:
        self.client.send_task(task_name, args=list(args), queue=self.queue, serializer=serializer)

    def messages_waiting(self) -> int:
        """Messages in the queue that no consumer holds (RabbitMQ's count of ready messages)."""
        with self.client.connection_for_write() as connection:
            return connection.default_channel.queue_declare(self.queue, passive=True).message_count

    def output_text(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]


@contextmanager
def celery_worker(*, amqp_url: str, syslog: SyslogReceiver, folder: Path) -> Iterator[RunningWorker]:
    queue = f"test.celery-worker.{uuid.uuid4().hex[:8]}"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HUB_MODE": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "hub.test",
        "AMQP_URL": amqp_url,
        "HUB_VAR_DIR": str(folder),
        "SYSLOG_ADDRESS": syslog.address,
        "SYSLOG_FACILITY": FACILITY,
        "HUB_TEST_WORKER": "1",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "hub",
        "worker",
        "--include",
        __name__,
        "--queues",
        queue,
        "--concurrency",
        "1",
        "--hostname",
        f"{queue}@localhost",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "INFO",
    ]
    output = folder / "worker.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=sink, stderr=subprocess.STDOUT)
    client = Celery("test-client", broker=amqp_url, set_as_current=False)
    worker = RunningWorker(process=process, syslog=syslog, queue=queue, client=client, output=output)
    try:
        _wait_until_ready(worker)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        client.close()
        with Connection(amqp_url) as connection:
            connection.default_channel.queue_delete(queue)


def _wait_until_ready(worker: RunningWorker, timeout: float = 30.0) -> None:
    def ready() -> bool:
        if worker.process.poll() is not None:
            pytest.fail(f"celery worker exited with {worker.process.returncode}:\n{worker.output_text()}")
        return worker.syslog.find(f"{worker.queue}@localhost ready.") is not None

    if not wait_until(ready, timeout=timeout, interval=0.05):
        pytest.fail(f"celery worker not ready within {timeout} s:\n{worker.output_text()}")


@pytest.fixture(scope="module", params=["udp", "unix"])
def worker(request, amqp_url, tmp_path_factory) -> Iterator[RunningWorker]:
    with (
        open_receiver(request.param) as syslog,
        celery_worker(amqp_url=amqp_url, syslog=syslog, folder=tmp_path_factory.mktemp("worker")) as running,
    ):
        yield running


def test_the_worker_log_reaches_syslog_with_the_configured_facility(worker):
    message = worker.syslog.wait_for(f"{worker.queue}@localhost ready.")
    assert worker.syslog.count(f"{worker.queue}@localhost ready.") == 1
    assert (message.facility * 8 + message.severity) == pri(FACILITY, "info")
    assert "celery.apps.worker" in message.text


def test_a_task_log_record_reaches_syslog_with_the_task_name_and_facility(worker):
    marker = uuid.uuid4().hex
    worker.send("tests.celery_worker.log_and_print", marker)
    message = worker.syslog.wait_for(f"task says {marker}")
    assert (message.facility * 8 + message.severity) == pri(FACILITY, "warning")
    assert message.text.startswith("hub[")
    assert "WARNING tests.celery_worker.log_and_print[" in message.text
    # Celery would colour a terminal; syslog must never see an escape sequence.
    assert "\x1b[" not in message.text
    # Once, though LOGGING and the signal handlers both know SYSLOG_ADDRESS: wait for the task's last line first.
    task_id = re.search(r"log_and_print\[([0-9a-f-]+)\]", message.text).group(1)
    worker.syslog.wait_for(f"log_and_print[{task_id}] succeeded")
    assert worker.syslog.count(f"task says {marker}") == 1


def test_print_inside_a_task_reaches_syslog_as_info(worker):
    marker = uuid.uuid4().hex
    worker.send("tests.celery_worker.log_and_print", marker)
    message = worker.syslog.wait_for(f"print says {marker}")
    assert (message.facility * 8 + message.severity) == pri(FACILITY, "info")
    assert "celery.redirected" in message.text


def test_a_pickled_task_message_is_refused_and_never_run(worker):
    pickled, plain = uuid.uuid4().hex, uuid.uuid4().hex
    worker.send("tests.celery_worker.log_and_print", pickled, serializer="pickle")
    worker.send("tests.celery_worker.log_and_print", plain)

    refusal = worker.syslog.wait_for("Refusing to deserialize untrusted content of type pickle")
    assert refusal.severity <= pri(FACILITY, "error") % 8
    # One consumer with prefetch 1 takes the queue in order: once the JSON task ran, the pickled one was handled.
    worker.syslog.wait_for(f"task says {plain}")
    assert worker.syslog.find(f"task says {pickled}") is None
    assert worker.process.poll() is None


def test_a_task_whose_pool_process_dies_runs_again(worker):
    """Acks late + reject on worker lost: the message goes back to the queue instead of being lost."""
    marker = uuid.uuid4().hex
    worker.send("tests.celery_worker.die_on_first_delivery", marker)
    worker.syslog.wait_for("WorkerLostError", timeout=15)
    message = worker.syslog.wait_for(f"ran again after the worker was lost: {marker}", timeout=15)
    assert (message.facility * 8 + message.severity) == pri(FACILITY, "warning")


def test_celery_beat_logs_to_syslog_too(amqp_url, tmp_path):
    """Production's `celery -A hub beat`: its log goes where SYSLOG_ADDRESS says, with the facility."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HUB_MODE": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "hub.test",
        "AMQP_URL": amqp_url,
        "HUB_VAR_DIR": str(tmp_path),
        "SYSLOG_FACILITY": FACILITY,
    }
    command = [sys.executable, "-m", "celery", "-A", "hub", "beat", "--schedule", str(tmp_path / "beat-schedule")]
    with open_receiver("udp") as syslog:
        environment["SYSLOG_ADDRESS"] = syslog.address
        process = subprocess.Popen(
            [*command, "--loglevel", "INFO"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            message = syslog.wait_for("beat: Starting...", timeout=30)
        except AssertionError as missing:
            process.kill()
            printed = process.communicate(timeout=15)[0].decode(errors="replace")
            pytest.fail(f"{missing}\nbeat printed:\n{printed[-3000:]}")
        finally:
            if process.poll() is None:
                # Nothing to finish: beat holds no work, and its graceful stop takes seconds.
                process.kill()
                process.communicate(timeout=15)
    assert message.facility * 8 + message.severity == pri(FACILITY, "info")
    assert "celery.beat" in message.text
    assert b"\x1b[" not in b"".join(syslog.raw)


def test_a_busy_worker_takes_no_second_message_until_the_first_task_is_done(worker):
    """Prefetch 1 with acks late: what waits stays in RabbitMQ, where another worker could take it."""
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    worker.send("tests.celery_worker.slow", first, 1.5)
    worker.send("tests.celery_worker.log_and_print", second)
    worker.syslog.wait_for(f"slow task started: {first}")
    assert worker.messages_waiting() == 1
    worker.syslog.wait_for(f"task says {second}")
    assert worker.syslog.find(f"slow task finished: {first}") is not None
    assert worker.messages_waiting() == 0
