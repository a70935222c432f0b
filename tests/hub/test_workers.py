import os
import signal
import threading

import pytest

from hub import embedded
from hub.workers import Backoff, Worker, run_in_foreground
from tests.support.waiting import wait_until


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
    assert wait_until(lambda: worker.rounds >= 3, timeout=2, interval=0.005)
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


# --- Backoff ---------------------------------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_from_initial_up_to_the_cap_and_reset_starts_again():
    backoff = Backoff(initial=0.5, maximum=5.0, jitter="none")
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert backoff.attempts == 7
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() == 0.5


def test_backoff_multiplier_sets_the_growth():
    backoff = Backoff(initial=1.0, maximum=100.0, multiplier=3.0, jitter="none")
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 3.0, 9.0, 27.0, 81.0]


def test_full_jitter_waits_between_nothing_and_the_exponential_delay():
    draws = iter([0.0, 0.5, 0.999, 0.25])
    backoff = Backoff(initial=1.0, maximum=4.0, jitter="full", random=lambda: next(draws))
    assert [backoff.next_delay() for _ in range(4)] == [0.0, 1.0, 0.999 * 4.0, 1.0]


def test_equal_jitter_waits_at_least_half_the_exponential_delay():
    draws = iter([0.0, 0.5, 1.0, 0.0])
    backoff = Backoff(initial=2.0, maximum=8.0, jitter="equal", random=lambda: next(draws))
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 3.0, 8.0, 4.0]


def test_the_default_jitter_spreads_waits_within_half_to_all_of_the_delay():
    backoff = Backoff(initial=1.0, maximum=1.0)
    delays = {backoff.next_delay() for _ in range(200)}
    assert all(0.5 <= delay <= 1.0 for delay in delays)
    assert len(delays) > 100  # spread, not one value every process would share


def test_backoff_survives_a_very_long_outage():
    backoff = Backoff(initial=0.5, maximum=30.0, jitter="none")
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 30.0


def test_backoff_from_timings_reads_the_shared_field_names():
    class Timings:
        retry_initial = 0.25
        retry_max = 1.0
        retry_jitter = "none"

    backoff = Backoff.from_timings(Timings())
    assert [backoff.next_delay() for _ in range(4)] == [0.25, 0.5, 1.0, 1.0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial": -1.0, "maximum": 1.0}, "0 <= initial <= maximum"),
        ({"initial": 2.0, "maximum": 1.0}, "0 <= initial <= maximum"),
        ({"initial": 1.0, "maximum": 2.0, "multiplier": 0.5}, "multiplier"),
        ({"initial": 1.0, "maximum": 2.0, "jitter": "decorrelated"}, "jitter must be one of none, full, equal"),
    ],
)
def test_backoff_refuses_settings_that_make_no_sense(options, message):
    with pytest.raises(ValueError, match=message):
        Backoff(**options)


def test_a_stop_from_another_thread_while_a_start_is_under_way_stops_the_worker(monkeypatch):
    # A web process starts its audit writer on its first request while a shutdown (or a test) stops it.
    worker = CountingWorker()
    original_start = threading.Thread.start
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 2})
    errors = []

    def start_with_a_stop_in_between(thread):
        if thread is not stopper and not stopper.is_alive():
            original_start(stopper)  # the stop arrives after the worker's thread is made, before it runs
            stopper.join(0.2)  # it waits for the start instead of meeting an unstarted thread
            if not stopper.is_alive():
                errors.append("stop() returned before the start finished")
        original_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_with_a_stop_in_between)
    worker.start()
    monkeypatch.undo()
    stopper.join(5)
    assert errors == []
    assert not stopper.is_alive()
    assert worker.finished.is_set()
    assert not worker.alive
