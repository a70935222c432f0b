import os
import signal
import threading
import time

import pytest

from hub import embedded
from hub.workers import Worker, run_in_foreground


class CountingWorker(Worker):
    name = "counting"

    def __init__(self):
        super().__init__()
        self.rounds = 0
        self.finished = threading.Event()

    def serve(self):
        while not self.stopping.wait(0.001):
            self.rounds += 1
        self.finished.set()


class CrashingWorker(Worker):
    name = "crashing"

    def serve(self):
        raise RuntimeError("modem on fire")


def test_a_started_worker_runs_in_the_background_until_stopped():
    worker = CountingWorker()
    worker.start()
    deadline = time.monotonic() + 2
    while worker.rounds < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert worker.alive
    worker.stop(timeout=2)
    assert worker.finished.is_set()
    assert not worker.alive


def test_a_crashing_worker_is_logged_not_raised_into_the_caller(caplog):
    worker = CrashingWorker()
    worker.start()
    worker._thread.join(2)
    assert not worker.alive
    assert "crashing crashed" in caplog.text
    assert "modem on fire" in caplog.text


@pytest.mark.django_db  # run() closes this thread's stale database connections on the way out
def test_sigterm_stops_a_foreground_worker_cleanly():
    worker = CountingWorker()
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
    run_in_foreground(worker)
    assert worker.finished.is_set()
    assert worker.rounds > 0


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(embedded, "_factories", {})
    monkeypatch.setattr(embedded, "_running", [])


def test_embedded_parts_start_in_registration_order_and_stop_in_reverse(clean_registry):
    events = []

    class Recording(Worker):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def serve(self):
            self.stopping.wait()

        def start(self):
            events.append(f"start {self.name}")
            super().start()

        def stop(self, timeout=10.0):
            events.append(f"stop {self.name}")
            super().stop(timeout)

    embedded.register("relay", lambda: Recording("relay"))
    embedded.register("bridge", lambda: None)  # not wanted here, e.g. no MQTT_URL
    embedded.register("consumer", lambda: Recording("consumer"))
    started = embedded.start_all()
    assert [w.name for w in started] == ["relay", "consumer"]
    embedded.stop_all()
    assert events == ["start relay", "start consumer", "stop consumer", "stop relay"]
