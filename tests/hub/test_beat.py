"""The embedded default's in-process beat: Celery's schedules decide, the tasks run here, a fake clock steps hours."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import shared_task
from celery.schedules import crontab
from django.apps import apps
from django.conf import settings as django_settings

from hub import embedded
from hub.beat import EmbeddedBeat, embedded_beat
from tests.support.waiting import wait_until

# The beat closes stale database connections around each run, as Django does around a request.
pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 28, 5, 30, tzinfo=UTC)
PROJECT_ROOT = Path(__file__).resolve().parents[2]

runs: list[tuple[str, datetime, str]] = []


class FakeTime:
    """A clock that moves only when the beat sleeps; stops the beat once it reaches ``until``."""

    def __init__(self, start: datetime, until: datetime) -> None:
        self.now = start
        self.until = until
        self.waits: list[float] = []
        self.beat: EmbeddedBeat | None = None

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += timedelta(seconds=seconds)
        if self.now >= self.until:
            self.beat.stopping.set()


_current_clock = [lambda: datetime.now(UTC)]


@shared_task(name="tests.beat.record")
def record(label: str, *, note: str = "") -> None:
    runs.append((label, _current_clock[0](), note or threading.current_thread().name))


@shared_task(name="tests.beat.fail")
def fail() -> None:
    raise RuntimeError("this entry always fails")


@pytest.fixture(autouse=True)
def _clear_runs():
    runs.clear()
    yield
    runs.clear()
    _current_clock[0] = lambda: datetime.now(UTC)


def run_beat(schedule: dict, *, hours: float, max_interval: float = 60.0) -> FakeTime:
    fake = FakeTime(START, START + timedelta(hours=hours))
    _current_clock[0] = fake.clock
    beat = EmbeddedBeat(schedule=schedule, clock=fake.clock, sleep=fake.sleep, max_interval=max_interval)
    fake.beat = beat
    started = time.monotonic()
    beat.serve()
    assert time.monotonic() - started < 2, "a fake clock should make hours of schedule take milliseconds"
    return fake


def times_of(label: str) -> list[datetime]:
    return [at for name, at, _ in runs if name == label]


def test_a_timedelta_entry_runs_every_interval_starting_one_interval_after_start():
    run_beat(
        {"ten-minutes": {"task": "tests.beat.record", "schedule": timedelta(minutes=10), "args": ("ten",)}}, hours=1
    )
    # The run due at the very end falls after the fake clock stopped the beat.
    assert times_of("ten") == [START + timedelta(minutes=10 * n) for n in range(1, 6)]


def test_a_number_of_seconds_is_a_schedule_too():
    run_beat({"half-minute": {"task": "tests.beat.record", "schedule": 30.0, "args": ("half",)}}, hours=0.05)
    assert times_of("half") == [START + timedelta(seconds=30 * n) for n in range(1, 6)]


def test_a_crontab_entry_runs_at_its_wall_clock_times():
    schedule = {
        "six-hourly": {"task": "tests.beat.record", "schedule": crontab(minute=0, hour="*/6"), "args": ("six",)}
    }
    fake = run_beat(schedule, hours=12.25, max_interval=3600)
    assert times_of("six") == [
        datetime(2026, 11, 28, 6, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
    ]
    # It sleeps until the next run rather than polling, but never longer than max_interval.
    assert max(fake.waits) <= 3600
    assert len(fake.waits) < 30


def test_args_and_kwargs_reach_the_task():
    schedule = {"with-kwargs": {"task": "tests.beat.record", "schedule": 60, "args": ("k",), "kwargs": {"note": "hi"}}}
    run_beat(schedule, hours=0.02)
    assert [note for _, _, note in runs] == ["hi"]


def test_a_failing_entry_is_logged_and_the_others_keep_running(caplog):
    schedule = {
        "broken": {"task": "tests.beat.fail", "schedule": 60},
        "fine": {"task": "tests.beat.record", "schedule": 60, "args": ("fine",)},
        "missing": {"task": "tests.beat.no_such_task", "schedule": 60},
    }
    with caplog.at_level(logging.ERROR, logger="hub.beat"):
        run_beat(schedule, hours=0.1)
    assert len(times_of("fine")) == 5
    failures = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert len(failures) == 5
    assert "this entry always fails" in failures[0]
    assert any("unknown task tests.beat.no_such_task" in r.getMessage() for r in caplog.records)


def test_the_schedule_objects_in_settings_are_left_untouched(settings):
    every_minute = crontab(minute="*")
    settings.CELERY_BEAT_SCHEDULE = {"minutely": {"task": "tests.beat.record", "schedule": every_minute}}
    beat = EmbeddedBeat(clock=lambda: START, sleep=lambda _: None)
    assert [entry.name for entry in beat.entries] == ["minutely"]
    assert beat.entries[0].schedule.now() == START
    assert every_minute.nowfun is None


def test_on_a_thread_tasks_run_in_this_process_and_stop_ends_a_long_wait_at_once():
    schedule = {"fast": {"task": "tests.beat.record", "schedule": timedelta(milliseconds=20), "args": ("fast",)}}
    long_wait = threading.Event()

    def sleep(seconds: float) -> bool:  # the default (the stop event's wait), noting when a long wait begins
        if seconds > 60:
            long_wait.set()
        return beat.stopping.wait(seconds)

    beat = EmbeddedBeat(schedule=schedule, max_interval=3600, sleep=sleep)
    beat.start()
    assert wait_until(lambda: len(times_of("fast")) >= 3, timeout=5, interval=0.01)
    assert {thread for _, _, thread in runs} == {"beat"}

    # Now nothing is due for an hour: stop() must not wait for it.
    beat.entries = []
    assert long_wait.wait(5), "the beat began its long wait"
    started = time.monotonic()
    beat.stop(timeout=5)
    assert time.monotonic() - started < 1
    assert not beat.alive


def test_the_embedded_default_registers_beat_and_production_does_not(settings, monkeypatch):
    hub_config = apps.get_app_config("hub")
    for is_embedded, expected in ((True, True), (False, False)):
        monkeypatch.setattr(embedded, "_factories", {})
        settings.EMBEDDED = is_embedded
        hub_config.ready()
        assert ("beat" in embedded.registered()) is expected


def test_the_factory_starts_nothing_without_entries_and_a_beat_with_them(settings):
    settings.CELERY_BEAT_SCHEDULE = {}
    assert embedded_beat() is None
    settings.CELERY_BEAT_SCHEDULE = {"hourly": {"task": "tests.beat.record", "schedule": 3600}}
    beat = embedded_beat()
    assert isinstance(beat, EmbeddedBeat)
    assert [entry.task for entry in beat.entries] == ["tests.beat.record"]


def test_every_entry_of_the_real_schedule_names_a_task_the_beat_finds_in_a_fresh_process(tmp_path):
    """A typo in CELERY_BEAT_SCHEDULE, or a tasks.py nobody imports, would otherwise just never run."""
    script = (
        "import json, django; django.setup()\n"
        "from hub.beat import EmbeddedBeat\n"
        "beat = EmbeddedBeat(); beat.discover_tasks()\n"
        "print(json.dumps({entry.name: entry.task in beat.app.tasks for entry in beat.entries}))\n"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "hub.settings", "HUB_VAR_DIR": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stderr
    found = json.loads(finished.stdout.strip().splitlines()[-1])
    assert set(found) == set(django_settings.CELERY_BEAT_SCHEDULE)
    assert [name for name, known in found.items() if not known] == []
