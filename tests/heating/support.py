"""Plain helpers the heating tests share: fast radio timings, a serial worker started on a simulated network, and
the Wednesday morning the rooms' tests run at. (Fixtures live in tests/heating/conftest.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

from heating.modem import ModemTimings, NetworkSettings
from heating.simulator import SimulatedNetwork
from heating.worker import SerialWorker, WorkerTimings

# A Wednesday, 10:00 in the house's zone (the `house_in_utc` fixture sets TIME_ZONE to UTC).
WEDNESDAY_10 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)

#: A modem that answers a simulated network at once (no reset pulse, no write gap, short guards and timeouts).
FAST_MODEM = ModemTimings(
    ready_timeout=1.0, command_guard=0.08, answer_timeout=1.0, write_gap=0.0, reset_pulse=0.0, poll_interval=0.02
)
#: A worker that retries, gives up and reports its heartbeat within a second, so the tests wait little.
FAST_RADIO = WorkerTimings(
    command_timeout=0.3,
    command_retries=3,
    command_poll=0.05,
    discovery_interval=60.0,
    node_silence=60.0,
    retry_initial=0.1,
    retry_max=0.2,
    heartbeat_interval=0.2,
)


def start_worker(
    network: SimulatedNetwork, *, channel: int, timings: WorkerTimings = FAST_RADIO, **worker_options
) -> SerialWorker:
    """A serial worker on ``network``'s TCP port, started, with its link up (the caller stops it)."""
    worker = SerialWorker(
        "socket://{}:{}".format(*network.tcp_address),
        network=NetworkSettings(channel=channel),
        timings=timings,
        modem_timings=FAST_MODEM,
        **worker_options,
    )
    worker.start()
    assert worker.link_ready.wait(5), "the worker never brought the link up"
    return worker
