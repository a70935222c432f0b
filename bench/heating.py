"""The serial worker end to end (issue 6's figures): readings stored per second from a burst on the virtual modem,
with SQLite and with PostgreSQL, and the time from a command's request to its confirmation on the simulator.

Each database runs in a child process of its own (a fresh SQLite file; a scratch PostgreSQL database): the
simulated network on a local TCP port, the real ``SerialWorker`` reading it over ``socket://`` with the modem's
real timings (50 ms between writes, 50 ms reads) apart from the start-up guard. Stored means committed: the
reading rows and their ``heating.reading`` outbox rows (no relay runs, so the outbox only grows).

* burst: ``BENCH_BURST`` STATUS packets (default 5,000) emitted at once; the clock runs from the request to the
  moment the last reading is counted in the database. Target ≥ 2,000 readings/s.
* command: ``BENCH_COMMANDS`` relay commands (default 20) one after the other, each confirmed by the node's
  STATUS; latency = confirmation time - request time as the rows record them, median and worst. Measured twice:
  queued in the worker's process (the embedded default: the worker is woken at once) and as another process's
  request reaches it (through the database poll, ``command_poll``). Target ≤ 100 ms.

    python -m bench heating     (BENCH_POSTGRES_URL points elsewhere; BENCH_SKIP_POSTGRES=1 skips it)
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

from bench._support import POSTGRES_URL, run_child, scratch_postgres, setup_django, simulated_radio, sqlite_url

TARGET_READINGS_PER_SECOND = 2_000
TARGET_CONFIRM_MS = 100.0


def child() -> None:
    setup_django()
    from heating import worker as worker_module
    from heating.models import Command, CommandState, Node, Reading
    from heating.selectors import node_definition
    from heating.services import COMMANDS_QUEUED, command_queue
    from hub import wakeups

    burst = int(os.environ.get("BENCH_BURST", "5000"))
    commands = int(os.environ.get("BENCH_COMMANDS", "20"))
    simulated, worker = simulated_radio(seed=1)
    try:
        deadline = time.monotonic() + 30
        while Node.objects.filter(definition="heater/Room heater").count() < 3:
            if time.monotonic() > deadline:
                raise RuntimeError("the heaters were not discovered")
            time.sleep(0.05)
        for node in simulated.nodes:
            simulated.silence(node.address)  # only the burst from now on
        time.sleep(0.5)

        before = Reading.objects.count()
        started = time.perf_counter()
        simulated.burst(burst)
        while Reading.objects.count() < before + burst:
            time.sleep(0.005)
        elapsed = time.perf_counter() - started

        for node in simulated.nodes:
            simulated.silence(node.address, False)
        heater = Node.objects.get(address=0xA1)
        definition = node_definition(heater)

        def confirm_latencies(count: int) -> list[float]:
            latencies = []
            for index in range(count):
                command = command_queue(node=heater, endpoint="Heating", value=(index + 1) % 2, definition=definition)
                while True:
                    row = Command.objects.filter(pk=command.pk).values("state", "requested_at", "finished_at").get()
                    if row["state"] in (CommandState.CONFIRMED, CommandState.FAILED):
                        break
                    time.sleep(0.002)
                if row["state"] != CommandState.CONFIRMED:
                    raise RuntimeError(f"command {command.pk} failed")
                latencies.append((row["finished_at"] - row["requested_at"]).total_seconds() * 1000)
            return latencies

        in_process = confirm_latencies(commands)
        # As a request from another process: no in-process wake, the worker finds the command at its next poll.
        wakeups.unregister(COMMANDS_QUEUED, worker_module.wake_for_commands)
        try:
            other_process = confirm_latencies(commands)
        finally:
            wakeups.register(COMMANDS_QUEUED, worker_module.wake_for_commands)
    finally:
        worker.stop()
        simulated.stop()
    print(
        json.dumps(
            {
                "burst": burst,
                "seconds": elapsed,
                "readings_per_second": burst / elapsed,
                "in_process_ms": in_process,
                "other_process_ms": other_process,
                "decode_errors": worker.stats.decode_errors,
            }
        )
    )


def report(label: str, result: dict) -> bool:
    rate = result["readings_per_second"]
    ok = rate >= TARGET_READINGS_PER_SECOND
    print(
        f"{label:<11} burst of {result['burst']:,} STATUS lines: stored in {result['seconds']:.2f} s = "
        f"{rate:,.0f} readings/s (target ≥ {TARGET_READINGS_PER_SECOND:,}) {'OK' if ok else 'BELOW TARGET'}"
    )
    for name, key in (("in-process", "in_process_ms"), ("other process", "other_process_ms")):
        latencies = result[key]
        median = statistics.median(latencies)
        good = median <= TARGET_CONFIRM_MS
        ok = ok and good
        print(
            f"{'':<11} relay command request → confirmed ({name}, {len(latencies)}): median {median:.0f} ms, "
            f"worst {max(latencies):.0f} ms (target ≤ {TARGET_CONFIRM_MS:.0f} ms) {'OK' if good else 'ABOVE TARGET'}"
        )
    return ok


def main(argv: list[str]) -> int:
    if "--child" in argv:
        child()
        return 0
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-heating-") as workdir:
        sqlite_result = run_child("bench.heating", database_url=sqlite_url(workdir), workdir=workdir)
        failures += not report("SQLite", sqlite_result)
        if os.environ.get("BENCH_SKIP_POSTGRES") != "1":
            try:
                url, drop = scratch_postgres("bench_heating")
            except Exception as exc:  # no server here: say so, do not fail the whole bench run
                print(f"PostgreSQL  skipped: {POSTGRES_URL} did not answer ({exc})")
            else:
                try:
                    result = run_child("bench.heating", database_url=url, workdir=workdir)
                    failures += not report("PostgreSQL", result)
                finally:
                    drop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
