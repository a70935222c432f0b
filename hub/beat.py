"""Beat's entries run in-process, for the embedded default (production runs ``celery -A hub beat``).

:class:`EmbeddedBeat` reads the same ``CELERY_BEAT_SCHEDULE`` the real beat
reads and asks Celery's own schedule objects (``timedelta``, a number of
seconds, ``crontab``, ``solar``) when each entry is due, then runs the task in
this process. Like beat, it keeps no record across restarts: an entry's first
run is one interval after start-up. The clock and the sleep are injectable so
tests step through hours of schedule in milliseconds.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from celery import Celery
from celery.beat import ScheduleEntry
from celery.schedules import maybe_schedule
from django.db import close_old_connections

from hub.workers import Worker

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], object]


class EmbeddedBeat(Worker):
    name = "beat"

    def __init__(
        self,
        *,
        schedule: Mapping[str, Mapping] | None = None,
        app: Celery | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        max_interval: float = 60.0,
    ) -> None:
        super().__init__()
        if app is None:
            from hub.celery import celery_app as app
        if schedule is None:
            from django.conf import settings

            schedule = settings.CELERY_BEAT_SCHEDULE
        self.app = app
        self.clock: Clock = clock or app.now
        # Waiting on the stop event, not time.sleep, so stop() interrupts a long wait at once.
        self.sleep: Sleep = sleep or self.stopping.wait
        # A cap on each wait, so a clock change (NTP on a box without an RTC) is noticed within it.
        self.max_interval = max_interval
        self.entries = [self._entry(name, spec) for name, spec in schedule.items()]

    def _entry(self, name: str, spec: Mapping) -> ScheduleEntry:
        # A copy, so the clock we give it does not leak into the settings' schedule objects.
        entry_schedule = copy.copy(maybe_schedule(spec["schedule"], spec.get("relative", False), app=self.app))
        entry_schedule.nowfun = self.clock
        return ScheduleEntry(
            name=name,
            task=spec["task"],
            schedule=entry_schedule,
            args=spec.get("args", ()),
            kwargs=spec.get("kwargs", {}),
            options=spec.get("options", {}),
            app=self.app,
        )

    def tick(self) -> float:
        """Run every entry that is due; return how many seconds to wait before the next tick."""
        wait = self.max_interval
        for index, entry in enumerate(self.entries):
            due, next_in = entry.is_due()
            if due:
                # Advance first, as beat does: a task that fails is not retried on every tick.
                self.entries[index] = next(entry)
                self._run(entry)
            wait = min(wait, next_in)
        return max(wait, 0.0)

    def _run(self, entry: ScheduleEntry) -> None:
        task = self.app.tasks.get(entry.task)
        if task is None:
            logger.error("beat entry %s names unknown task %s", entry.name, entry.task)
            return
        logger.info("beat running %s (%s)", entry.name, entry.task)
        # As around a request: a connection broken since the last run (database restart) is replaced.
        close_old_connections()
        try:
            # apply() runs the task here, in this thread, whatever task_always_eager says; throw=False
            # overrides task_eager_propagates so one failing entry cannot stop the others.
            result = task.apply(args=entry.args, kwargs=entry.kwargs, throw=False)
        except Exception:
            logger.exception("beat entry %s could not run", entry.name)
            return
        finally:
            close_old_connections()
        if result.failed():
            logger.error("beat entry %s failed: %r\n%s", entry.name, result.result, result.traceback)

    def discover_tasks(self) -> None:
        """Import every app's ``tasks.py``, as the real beat does at start."""
        # Not loader.import_default_modules(): its Django fixup calls django.setup() again, which reconfigures
        # logging and reruns the system checks inside the running web process.
        self.app.autodiscover_tasks(force=True)

    def serve(self) -> None:
        self.discover_tasks()
        logger.info("beat entries: %s", ", ".join(entry.name for entry in self.entries) or "none")
        while not self.stopping.is_set():
            self.sleep(self.tick())


def embedded_beat() -> EmbeddedBeat | None:
    """The factory ``hub.embedded`` calls: no thread when there is nothing scheduled."""
    from django.conf import settings

    if not settings.CELERY_BEAT_SCHEDULE:
        return None
    return EmbeddedBeat()
