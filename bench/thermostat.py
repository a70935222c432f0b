"""The thermostat in the serial worker (issue 11's figures): one decision pass over 500 rooms, and the time from a
temperature reading to the relay command it causes being confirmed on the simulator.

Runs in a child process on a fresh SQLite database (``HUB_VAR_DIR`` a temporary folder), as bench/heating.py does.

* tick: 500 rooms, each with its own heater node (room heater 72/1) as sensor and relay, each node's Manual = 1
  and relay state heard (so the pass runs as in a steady house: deciding, comparing, writing nothing). One
  ``ThermostatRunner.run_pass()`` loads the rooms (three queries), resolves each target, decides and compares;
  ``BENCH_TICKS`` passes (default 20), median and worst. Target ≤ 50 ms. The first pass, which takes every room
  up afresh (its latest reading from the database, a QUERY per sensor), is printed too.
* reading → relay: the simulated network on a local TCP port with one room heater, the real ``SerialWorker``
  and its thermostat on the simulator's clock (time x1), minimum times 0. The room's temperature is set below
  (then above) its target and the node's STATUS of register 11 emitted; the clock runs from that emission to the
  relay command's confirmation as the command row records it. ``BENCH_FLIPS`` flips (default 10), median and
  worst. Target ≤ 200 ms.

    python -m bench thermostat
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

from bench._support import run_child, setup_django, simulated_radio, sqlite_url

TARGET_TICK_MS = 50.0
TARGET_READING_TO_RELAY_MS = 200.0
ROOMS = 500


def child() -> None:
    setup_django()
    tick = bench_tick(int(os.environ.get("BENCH_TICKS", "20")))
    relay = bench_reading_to_relay(int(os.environ.get("BENCH_FLIPS", "10")))
    print(json.dumps({**tick, **relay}))


def bench_tick(passes: int) -> dict:
    from django.utils import timezone

    from heating.models import Mode, Node, Reading, Room, RoomHeater
    from heating.thermostat_runner import ThermostatClock, ThermostatRunner, ThermostatTimings

    now = timezone.now()
    nodes = Node.objects.bulk_create(
        Node(
            address=0x100 + index,
            key=f"{0x100 + index:04x}",
            manufacturer_id=72,
            product_id=1,
            definition="heater/Room heater",
            reachable=True,
        )
        for index in range(ROOMS)
    )
    rooms = Room.objects.bulk_create(
        Room(
            slug=f"room-{index}",
            name=f"Room {index}",
            mode=Mode.MANUAL,
            manual_target=20.0 + (index % 3),
            temperature_node=node,
            temperature_endpoint="RoomTemp",
        )
        for index, node in enumerate(nodes)
    )
    RoomHeater.objects.bulk_create(RoomHeater(room=room, node=node) for room, node in zip(rooms, nodes, strict=True))
    Reading.objects.bulk_create(
        Reading(node=node, endpoint_id=f"{node.address}.11.0", name="RoomTemp", value=19.0 + index % 5, recorded_at=now)
        for index, node in enumerate(nodes)
    )
    clock = {"now": 1000.0}
    queries: list[tuple[int, int]] = []
    runner = ThermostatRunner(
        timings=ThermostatTimings(),
        clock=ThermostatClock(now=lambda: clock["now"]),
        send_query=lambda address, register_id: queries.append((address, register_id)),
    )
    started = time.perf_counter()
    runner.run_pass()
    first_ms = (time.perf_counter() - started) * 1000
    # What the nodes answer: Manual = 1, and each relay in the state the pass decided (a steady house).
    statuses = []
    for room, node in zip(rooms, nodes, strict=True):
        statuses.append((node.address, 20, b"\x01"))
        statuses.append((node.address, 12, b"\x01" if runner.decision_of(room.pk).heat else b"\x00"))
    first_queries = len(queries)
    queries.clear()
    timings = []
    for _ in range(passes):
        clock["now"] += 30.0
        # What the radio hears between passes in a steady house: every relay reports itself each 60 s (here: before
        # each pass, so no relay state goes stale and none is asked); temperatures come as the QUERYs ask.
        runner.after_batch(statuses)
        started = time.perf_counter()
        runner.run_pass()
        timings.append((time.perf_counter() - started) * 1000)
    # A change to any room (a target set on a page) reloads them all at the next pass.
    started = time.perf_counter()
    runner._load_rooms()
    reload_ms = (time.perf_counter() - started) * 1000
    Room.objects.all().delete()
    Node.objects.all().delete()
    return {
        "rooms": ROOMS,
        "first_pass_ms": first_ms,
        "reload_ms": reload_ms,
        "first_pass_queries": first_queries,
        "steady_queries": len(queries),
        "tick_ms": timings,
        "relay_commands": runner.stats.relay_commands,
    }


def bench_reading_to_relay(flips: int) -> dict:
    import random

    from django.utils import timezone

    from heating.models import Command, CommandState, Mode, Node, Room, RoomHeater
    from heating.simulator.node import ROOM_TEMP, RoomHeaterNode
    from heating.simulator.node import Room as SimulatedRoom
    from heating.swap.codec import encode_received
    from heating.thermostat_runner import ThermostatClock, ThermostatRunner, ThermostatTimings

    heater = RoomHeaterNode(
        address=0xA1, room=SimulatedRoom(temperature=19.0), channel=0, noise=0.0, rng=random.Random(1)
    )
    simulated, worker = simulated_radio(
        nodes=[heater],
        thermostat_for=lambda network: ThermostatRunner(
            timings=ThermostatTimings(interval=5.0, min_on=0.0, min_off=0.0),
            clock=ThermostatClock.of_simulator(network),
        ),
    )
    latencies, decided = [], []
    try:
        node = wait(lambda: Node.objects.filter(address=0xA1, definition="heater/Room heater").first(), "discovery")
        room = Room.objects.create(
            slug="bench", name="Bench", mode=Mode.MANUAL, manual_target=20.0, temperature_node=node
        )
        Room.objects.filter(pk=room.pk).update(temperature_endpoint="RoomTemp")
        RoomHeater.objects.create(room=room, node=node)
        # Under the hub's control (Manual = 1) and the first switch done: from now on a reading decides alone.
        wait(lambda: Command.objects.filter(endpoint="Heating", state=CommandState.CONFIRMED).exists(), "first switch")
        for index in range(flips):
            heat = index % 2 == 1  # the first switch turned it on (19 < 20): flip off, on, off, …
            temperature = 17.0 if heat else 23.0
            before = Command.objects.filter(endpoint="Heating").count()
            heater.room.temperature = temperature
            heater.registers[ROOM_TEMP] = round(temperature * 100).to_bytes(2, "big", signed=True)
            emitted = timezone.now()
            simulated.emit_raw((encode_received(heater.status_packet(ROOM_TEMP)) + "\r\n").encode())

            def confirmed(before=before):
                return (
                    Command.objects.filter(endpoint="Heating", state=CommandState.CONFIRMED)
                    .order_by("-id")
                    .filter(id__gt=0)
                    .first()
                    if Command.objects.filter(endpoint="Heating").count() > before
                    and not Command.objects.filter(endpoint="Heating", state__in=["queued", "sent"]).exists()
                    else None
                )

            command = wait(confirmed, "the relay command confirmed")
            if command.requested_value != int(heat):
                raise RuntimeError(f"flip {index}: the relay was switched to {command.requested_value}, not {heat}")
            latencies.append((command.finished_at - emitted).total_seconds() * 1000)
            decided.append((command.requested_at - emitted).total_seconds() * 1000)
    finally:
        worker.stop()
        simulated.stop()
    return {"reading_to_confirmed_ms": latencies, "reading_to_command_ms": decided}


def wait(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.002)
    return result


def report(result: dict) -> bool:
    ticks = result["tick_ms"]
    median = statistics.median(ticks)
    tick_ok = median <= TARGET_TICK_MS
    print(
        f"decision pass over {result['rooms']} rooms ({len(ticks)} passes, steady house): median {median:.1f} ms, "
        f"worst {max(ticks):.1f} ms (target ≤ {TARGET_TICK_MS:.0f} ms) {'OK' if tick_ok else 'ABOVE TARGET'}"
    )
    print(
        f"{'':<4}first pass after a start (every room taken up afresh, {result['first_pass_queries']} QUERYs): "
        f"{result['first_pass_ms']:.0f} ms; relay commands in the steady passes: {result['relay_commands']}; "
        f"reloading the rooms after a change: {result['reload_ms']:.0f} ms"
    )
    latencies = result["reading_to_confirmed_ms"]
    median = statistics.median(latencies)
    relay_ok = median <= TARGET_READING_TO_RELAY_MS
    print(
        f"reading → relay command confirmed on the simulator ({len(latencies)} flips): median {median:.0f} ms, "
        f"worst {max(latencies):.0f} ms (target ≤ {TARGET_READING_TO_RELAY_MS:.0f} ms) "
        f"{'OK' if relay_ok else 'ABOVE TARGET'}; of which reading → command queued: median "
        f"{statistics.median(result['reading_to_command_ms']):.0f} ms"
    )
    return tick_ok and relay_ok


def main(argv: list[str]) -> int:
    if "--child" in argv:
        child()
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-thermostat-") as workdir:
        ok = report(run_child("bench.thermostat", database_url=sqlite_url(workdir), workdir=workdir))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
