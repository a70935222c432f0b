"""Long-running workers: one class each, the same code under a management command and in the embedded default.

A worker subclasses :class:`Worker` and implements :meth:`Worker.serve`, a loop
that returns once ``self.stopping`` is set. Production runs it in the foreground
with :func:`run_in_foreground` (SIGTERM/SIGINT stop it cleanly); the embedded
default starts it on a thread from the ASGI lifespan (:mod:`hub.embedded`).
"""

from __future__ import annotations

import logging
import signal
import threading
from abc import ABC, abstractmethod

from django.db import close_old_connections

logger = logging.getLogger(__name__)


class Worker(ABC):
    #: A short name used in logs, thread names and the health report.
    name: str = "worker"

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def serve(self) -> None:
        """Do the work until ``self.stopping`` is set, then return."""

    def run(self) -> None:
        """Run ``serve`` in the calling thread, closing this thread's DB connections afterwards."""
        logger.info("%s starting", self.name)
        try:
            self.serve()
        finally:
            close_old_connections()
            logger.info("%s stopped", self.name)

    def start(self) -> None:
        """Run on a daemon thread and return at once."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.stopping.clear()
        self._thread = threading.Thread(target=self._run_logged, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the loop to finish and wait for it."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("%s did not stop within %.1f s", self.name, timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run_logged(self) -> None:
        try:
            self.run()
        except Exception:
            logger.exception("%s crashed", self.name)


def run_in_foreground(worker: Worker) -> None:
    """Run ``worker`` in this thread until SIGTERM or SIGINT (what a management command does)."""

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("%s received signal %s, stopping", worker.name, signal.Signals(signum).name)
        worker.stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
