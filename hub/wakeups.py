"""Wake-up signals: a write that commits tells an idle worker in this process to look now, not at its next poll.

The service that writes (``messaging.services`` filling the outbox, ``heating.services`` queueing a command)
and the worker that reads (the relay, the serial worker) each know only a signal's name and this module, not
each other::

    wakeups.register(COMMANDS_QUEUED, wake_for_commands)        # the worker's module, once
    transaction.on_commit(partial(wakeups.wake, COMMANDS_QUEUED))  # the service, per write

A signal nobody registered wakes nothing: workers in other processes find the rows at their next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_lock = threading.Lock()
_callbacks: dict[str, tuple[Callable[[], None], ...]] = {}


def register(name: str, callback: Callable[[], None]) -> None:
    """Call ``callback`` (cheap, non-blocking, any thread) on each :func:`wake` of ``name``; once per callback."""
    with _lock:
        present = _callbacks.get(name, ())
        if callback not in present:
            _callbacks[name] = (*present, callback)


def unregister(name: str, callback: Callable[[], None]) -> None:
    with _lock:
        _callbacks[name] = tuple(known for known in _callbacks.get(name, ()) if known != callback)


def wake(name: str) -> None:
    """Run every callback registered for ``name`` (none: nothing happens)."""
    for callback in _callbacks.get(name, ()):
        callback()
