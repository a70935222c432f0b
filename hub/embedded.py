"""The embedded default's long-running parts, started by the ASGI lifespan of the one process.

Apps register a factory from ``AppConfig.ready`` (registering starts nothing);
the lifespan calls :func:`start_all` at start-up and :func:`stop_all` at shutdown.
A factory returns ``None`` when its part is not wanted (e.g. no ``MQTT_URL``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hub.workers import Worker

logger = logging.getLogger(__name__)

WorkerFactory = Callable[[], Worker | None]

_factories: dict[str, WorkerFactory] = {}
_running: list[Worker] = []


def register(name: str, factory: WorkerFactory) -> None:
    """Add (or replace) the factory for the embedded part called ``name``; start-up order is registration order."""
    _factories[name] = factory


def registered() -> list[str]:
    return list(_factories)


def start_all() -> list[Worker]:
    for name, factory in _factories.items():
        worker = factory()
        if worker is None:
            logger.info("embedded part %s not wanted here; skipped", name)
            continue
        worker.start()
        _running.append(worker)
        logger.info("embedded part %s started", name)
    return list(_running)


def track(worker: Worker) -> None:
    """Have the lifespan shutdown stop ``worker`` too: a part started outside :func:`start_all`, e.g. lazily by
    a production web process (uvicorn re-raises SIGTERM after the shutdown, so ``atexit`` never runs there)."""
    if worker not in _running:
        _running.append(worker)


def stop_all() -> None:
    while _running:
        _running.pop().stop()
