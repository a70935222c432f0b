"""Live push fan-out: the hub (``/ws/push`` fed by the MQTT bridge) next to Mosquitto's own WebSocket listener.

One harness, two targets, in one run, on this machine's loopback:

* **hub** — a real uvicorn serving ``hub.asgi:application`` (one process, the Redis channel layer and push bus),
  ``manage.py mqtt_bridge`` against a private Mosquitto, N WebSocket clients signed in with a session, each
  subscribed through ``/ws/push`` to ``bench/+/measure``;
* **anchor** — the same N clients (the same ``websockets`` library, the same process layout) speaking MQTT 3.1.1
  over WebSocket straight to that Mosquitto's ``protocol websockets`` listener, subscribed to the same filter.
  The anchor side uses nothing from the hub: a 40-line MQTT encoder/decoder below, no paho.

A publisher sends QoS 0 messages to Mosquitto's plain MQTT listener, each carrying its send time; every client
records the latency of each message it receives (publish → receipt, one clock). Issue 14's steps, for N = 100
and 1,000: the fixed rate (200 and 10 msg/s), then the highest rate Mosquitto sustains in this run (every message,
as fast as offered; found by climbing 2, 4, 8 times the fixed rate). At each step the hub and Mosquitto take
turns for ``BENCH_PUSH_ROUNDS`` rounds (3), first one then the other; medians are printed: deliveries per second,
share delivered, p50/p99, CPU (the hub: web process and bridge) and CPU per 10,000 deliveries/s, the harness's own
CPU (clients and publisher), and the same-run ratios the targets are (p99 and CPU per delivery ≤ 2 times
Mosquitto's; memory ≤ 15 MiB per 1,000 idle connections, ≤ 25 busy). Then each candidate server at one step
(N = 1,000 at 10 msg/s, one round: the figures behind the choice of server), and two web processes' throughput.
The clients run in several processes so the harness is not the ceiling (it still shares the machine: the load
average is printed). Exit status 2 when a target is missed.

    python -m bench push     BENCH_PUSH_N=100,1000  BENCH_PUSH_ROUNDS=3  BENCH_PUSH_SECONDS=5
                             BENCH_PUSH_CLIENT_PROCS=min(4, CPUs)  BENCH_PUSH_SERVER=uvicorn-websockets-sansio
                             BENCH_PUSH_SERVERS=uvicorn-websockets,uvicorn-websockets-sansio,uvicorn-wsproto,granian
                             BENCH_REDIS_URL=redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: The server the hub is measured with (``server_command``), and the candidates compared at one step.
SERVER = os.environ.get("BENCH_PUSH_SERVER", "uvicorn-websockets-sansio")  # the hub's own (hub.asgi)
SERVERS = os.environ.get("BENCH_PUSH_SERVERS", "uvicorn-websockets,uvicorn-websockets-sansio,uvicorn-wsproto,granian")
SERVERS = [name for name in SERVERS.split(",") if name]
#: The fixed steps (issue 14): Mosquitto's highest sustained rates in earlier runs; each N also climbs to the
#: highest rate Mosquitto sustains in this run.
FIXED_RATES = {100: 200, 1000: 10}
SIZES = [int(size) for size in os.environ.get("BENCH_PUSH_N", "100,1000").split(",") if size]
ROUNDS = int(os.environ.get("BENCH_PUSH_ROUNDS", "3"))
#: Targets, as ratios to Mosquitto in the same run, and memory per 1,000 connections.
P99_RATIO, CPU_RATIO, IDLE_MIB, BUSY_MIB = 2.0, 2.0, 15, 25
TOPIC_FILTER = "bench/+/measure"
TOPICS = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(server: str, port: int, workers: int) -> list[str]:
    """The command serving ``hub.asgi:application`` on ``port``: ``uvicorn`` (its default WebSocket
    implementation), ``uvicorn-<ws>`` (``websockets``, ``websockets-sansio``, ``wsproto``) or ``granian``."""
    if server == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface=asginl",  # no lifespan, as uvicorn's --lifespan=off below: the embedded parts stay off
            "--host=127.0.0.1",
            f"--port={port}",
            "--loop=uvloop",
            f"--workers={workers}",
            "--log-level=warning",
            "--no-access-log",
            "--http=1",
            "hub.asgi:application",
        ]
    ws = server.removeprefix("uvicorn").removeprefix("-") or "auto"
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "hub.asgi:application",
        "--host=127.0.0.1",
        f"--port={port}",
        "--lifespan=off",
        "--loop=uvloop",
        "--http=httptools",
        "--no-access-log",
        "--log-level=warning",
        f"--ws={ws}",
        # As docker-compose.yml and runhub serve it: compressing every frame per socket costs more than
        # it saves for small JSON messages (and Mosquitto does not compress either).
        "--ws-per-message-deflate=false",
        *([f"--workers={workers}"] if workers > 1 else []),
    ]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# --- MQTT 3.1.1, just enough for the anchor and the publisher (no paho) ------------------------------------------


def _remaining_length(length: int) -> bytes:
    encoded = bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def mqtt_connect(client_id: str) -> bytes:
    # Protocol "MQTT" level 4, clean session, keep-alive 0 (off: the bench's sockets stay busy anyway).
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + _string(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def mqtt_subscribe(topic_filter: str, packet_id: int = 1) -> bytes:
    body = struct.pack("!H", packet_id) + _string(topic_filter) + bytes([0])
    return bytes([0x82]) + _remaining_length(len(body)) + body


def mqtt_publish(topic: str, payload: bytes) -> bytes:
    body = _string(topic) + payload
    return bytes([0x30]) + _remaining_length(len(body)) + body


class MqttStream:
    """Splits a byte stream (WebSocket frames or TCP reads) into MQTT packets: (type, body)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        packets = []
        while len(self.buffer) >= 2:
            multiplier, length, position = 1, 0, 1
            while True:
                if position >= len(self.buffer):
                    return packets
                byte = self.buffer[position]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                position += 1
                if not byte & 0x80:
                    break
            if len(self.buffer) < position + length:
                return packets
            packets.append((self.buffer[0], bytes(self.buffer[position : position + length])))
            del self.buffer[: position + length]
        return packets


def publish_payload(body: bytes, first_byte: int) -> bytes:
    topic_length = struct.unpack("!H", body[:2])[0]
    start = 2 + topic_length + (2 if (first_byte >> 1) & 0x03 else 0)
    return body[start:]


# --- the clients (in worker processes) ------------------------------------------------------------------------


async def _hub_client(url: str, headers: dict, record, ready: asyncio.Event, errors: list) -> None:
    import websockets

    try:
        async with websockets.connect(url, additional_headers=headers, max_queue=None, open_timeout=60) as socket_:
            await socket_.send(json.dumps({"op": "subscribe", "topic": TOPIC_FILTER, "id": 1}))
            reply = json.loads(await socket_.recv())
            if reply.get("op") != "ack":
                raise RuntimeError(f"subscription refused: {reply}")
            ready.set()

            async def keep_alive() -> None:  # the server closes a socket silent for 60 s
                while True:
                    await asyncio.sleep(20)
                    await socket_.send('{"op":"ping","id":2}')

            pinger = asyncio.create_task(keep_alive())
            try:
                async for text in socket_:
                    frame = json.loads(text)
                    if frame.get("op") == "message":
                        payload = frame["payload"]
                        record(payload["s"], time.time() - payload["t"])
            finally:
                pinger.cancel()
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        ready.set()


async def _anchor_client(url: str, index: int, record, ready: asyncio.Event, errors: list) -> None:
    import websockets

    try:
        async with websockets.connect(url, subprotocols=["mqtt"], max_queue=None, open_timeout=60) as socket_:
            stream = MqttStream()
            await socket_.send(mqtt_connect(f"bench-{os.getpid()}-{index}"))
            await socket_.send(mqtt_subscribe(TOPIC_FILTER))
            subscribed = False
            async for data in socket_:
                for first_byte, body in stream.feed(data):
                    kind = first_byte >> 4
                    if kind == 9 and not subscribed:  # SUBACK
                        subscribed = True
                        ready.set()
                    elif kind == 3:  # PUBLISH
                        payload = json.loads(publish_payload(body, first_byte))
                        record(payload["s"], time.time() - payload["t"])
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        ready.set()


def client_process(connection, target: str, url: str, headers: dict, count: int) -> None:
    """Hold ``count`` connections; answer "report" with {step: latencies} and "stop" by exiting."""
    import uvloop

    latencies: dict[int, list[float]] = {}
    last_receipt: dict[int, float] = {}

    def record(step: int, latency: float) -> None:
        latencies.setdefault(step, []).append(latency)
        last_receipt[step] = time.time()

    async def run() -> None:
        errors: list[str] = []
        readies = [asyncio.Event() for _ in range(count)]
        tasks = []
        for index, ready in enumerate(readies):
            if target == "hub":
                tasks.append(asyncio.create_task(_hub_client(url, headers, record, ready, errors)))
            else:
                tasks.append(asyncio.create_task(_anchor_client(url, index, record, ready, errors)))
            if index % 50 == 49:
                await asyncio.sleep(0.05)  # a steady arrival, not a SYN flood the kernel drops
        await asyncio.gather(*(ready.wait() for ready in readies))
        connection.send(("ready", errors[:3], len(errors)))
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, connection.recv)
            if command == "report":
                connection.send(("report", dict(latencies), dict(last_receipt)))
                latencies.clear()
            elif command == "stop":
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return

    uvloop.run(run())


# --- processes: Mosquitto, the hub --------------------------------------------------------------------------------


@dataclass
class Mosquitto:
    directory: Path
    mqtt_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> None:
        config = self.directory / "mosquitto.conf"
        config.write_text(
            f"listener {self.mqtt_port} 127.0.0.1\n"
            f"listener {self.ws_port} 127.0.0.1\nprotocol websockets\n"
            "allow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_type error\n"
        )
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL)
        wait_for_port(self.mqtt_port)
        wait_for_port(self.ws_port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class Hub:
    """A scratch SQLite database with one staff user and a session, uvicorn and the bridge."""

    def __init__(self, directory: Path, mosquitto: Mosquitto, *, server: str = "uvicorn", workers: int = 1) -> None:
        self.directory = directory
        self.server, self.workers = server, workers
        self.port = free_port()
        self.environment = {
            **os.environ,
            "HUB_MODE": "embedded",
            "HUB_VAR_DIR": str(directory),
            "DATABASE_URL": f"sqlite:///{directory / 'bench.sqlite3'}",
            "REDIS_URL": REDIS_URL,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "false",
            "MQTT_BRIDGE_FILTERS": "bench/#",
            # Every bench client signs in as the one bench user: lift the per-user socket limit (20 by default).
            "PUSH_MAX_SOCKETS_PER_USER": "100000",
        }
        for variable in ("AMQP_URL", "MQTT_URL", "SYSLOG_ADDRESS"):
            self.environment.pop(variable, None)
        self.mqtt_url = f"mqtt://127.0.0.1:{mosquitto.mqtt_port}"
        self.web: subprocess.Popen | None = None
        self.bridge: subprocess.Popen | None = None
        self.cookie = ""

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env=self.environment,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def start(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        script = (
            "from importlib import import_module\n"
            "from django.conf import settings\n"
            "from django.contrib.auth.models import Group, User\n"
            f"user = User.objects.create_user('bench', password={secrets.token_urlsafe(16)!r})\n"
            "user.groups.add(Group.objects.get(name='staff'))\n"
            "session = import_module(settings.SESSION_ENGINE).SessionStore()\n"
            "session['_auth_user_id'] = str(user.pk)\n"
            "session['_auth_user_backend'] = 'django.contrib.auth.backends.ModelBackend'\n"
            "session['_auth_user_hash'] = user.get_session_auth_hash()\n"
            "session.create()\n"
            "print(settings.SESSION_COOKIE_NAME + '=' + session.session_key)\n"
        )
        self.cookie = self.manage("shell", "-c", script).strip().splitlines()[-1]
        self.web = subprocess.Popen(
            server_command(self.server, self.port, self.workers), cwd=PROJECT_DIR, env=self.environment
        )
        self.bridge = subprocess.Popen(
            [sys.executable, "manage.py", "mqtt_bridge", "--no-events"],
            cwd=PROJECT_DIR,
            env={**self.environment, "MQTT_URL": self.mqtt_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        time.sleep(2.0)  # the bridge connects and subscribes; uvicorn's workers start
        asyncio.run(self._warm_up())

    async def _warm_up(self) -> None:
        # The first connections import and build what every later one reuses: keep that out of the memory figure.
        import websockets

        for _ in range(4 * self.workers):
            async with websockets.connect(self.url, additional_headers=self.headers) as socket_:
                await socket_.send(json.dumps({"op": "subscribe", "topic": TOPIC_FILTER, "id": 1}))
                await socket_.recv()

    def web_pids(self) -> list[int]:
        """The processes serving the WebSockets: uvicorn itself, or its workers (granian's always)."""
        if self.workers <= 1 and self.server != "granian":
            return [self.web.pid]
        children = Path(f"/proc/{self.web.pid}/task/{self.web.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def web_rss(self) -> float:
        return sum(rss_mib(pid) for pid in self.web_pids())

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/push"

    @property
    def headers(self) -> dict:
        return {"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{self.port}"}

    def stop(self) -> None:
        for process in (self.bridge, self.web):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the run ------------------------------------------------------------------------------------------------------


@dataclass
class Step:
    target: str
    clients: int
    rate: int
    published: int
    delivered: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_percent: float
    rss_mib: float = 0.0  # busy: web-process growth per 1,000 connections after the step's messages
    cpu_split: tuple[float, float] | None = None
    harness_percent: float = 0.0  # the clients' and the publisher's CPU, % of a core
    idle_mib: float = 0.0  # web-process growth per 1,000 connections, connected and subscribed, before any message
    rounds: list[float] = field(default_factory=list)  # p99 of each round (a median step)

    @property
    def cpu_per_10k(self) -> float:
        """% of a core per 10,000 deliveries a second."""
        return self.cpu_percent * 10_000 / self.per_second if self.per_second else float("inf")

    @property
    def share(self) -> float:
        expected = self.published * self.clients
        return self.delivered / expected if expected else 0.0

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


async def publish_at(
    rate: int, seconds: float, step: int, port: int, *, topic_prefix: str = "bench"
) -> tuple[int, float]:
    """QoS 0 messages to Mosquitto at ``rate``/s for ``seconds``; returns (count, wall time)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(mqtt_connect(f"bench-publisher-{secrets.token_hex(3)}"))
    await writer.drain()
    await reader.readexactly(4)  # CONNACK
    total = int(rate * seconds)
    started = time.monotonic()
    pad = "x" * 64
    for index in range(total):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = json.dumps({"t": time.time(), "s": step, "i": index, "celsius": 21.5, "pad": pad}).encode()
        writer.write(mqtt_publish(f"{topic_prefix}/{index % TOPICS}/measure", payload))
        if index % 20 == 0:
            await writer.drain()
    await writer.drain()
    elapsed = time.monotonic() - started
    writer.write(b"\xe0\x00")  # DISCONNECT
    await writer.drain()
    writer.close()
    return total, elapsed


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class ClientPool:
    """N clients of one target, spread over worker processes, connected and subscribed."""

    def __init__(self, target: str, url: str, headers: dict, clients: int, processes: int, pids: list[int]) -> None:
        self.target = target
        self.clients = clients
        self.pids = pids  # the target's processes whose CPU is counted (the hub: web processes, then the bridge)
        memory_pids = pids[:-1] if target == "hub" else pids
        memory_before = sum(rss_mib(pid) for pid in memory_pids)
        context = multiprocessing.get_context("spawn")
        self.pipes, self.workers = [], []
        for index in range(processes):
            count = clients // processes + (1 if index < clients % processes else 0)
            if not count:
                continue
            parent, child = context.Pipe()
            worker = context.Process(target=client_process, args=(child, target, url, headers, count), daemon=True)
            worker.start()
            self.pipes.append(parent)
            self.workers.append(worker)
        self.failures = 0
        for pipe in self.pipes:
            _, sample, failed = pipe.recv()
            self.failures += failed
            if failed:
                print(f"  {target}: {failed} client(s) failed to connect, e.g. {sample}", flush=True)
        self.rss_per_1000 = (sum(rss_mib(pid) for pid in memory_pids) - memory_before) * 1000 / clients

    def step(self, rate: int, seconds: float, step: int, mqtt_port: int) -> Step:
        cpu_before = [cpu_seconds(pid) for pid in self.pids]
        harness_before = self.harness_cpu()
        started_at = time.time()
        published, elapsed = asyncio.run(publish_at(rate, seconds, step, mqtt_port))
        # Let the tail arrive: stop once nothing more came for a second (at most 15 s).
        latencies: list[float] = []
        last_receipt = started_at
        deadline = time.monotonic() + 15
        last_seen = -1
        while time.monotonic() < deadline:
            time.sleep(1.0)
            for pipe in self.pipes:
                pipe.send("report")
            for pipe in self.pipes:
                _, by_step, receipts = pipe.recv()
                latencies.extend(by_step.get(step, []))
                last_receipt = max(last_receipt, receipts.get(step, started_at))
            if len(latencies) == last_seen or len(latencies) >= published * (self.clients - self.failures):
                break
            last_seen = len(latencies)
        cpu_each = [cpu_seconds(pid) - before for pid, before in zip(self.pids, cpu_before, strict=True)]
        harness_used = self.harness_cpu() - harness_before
        cpu_used = sum(cpu_each)
        result = Step(
            target=self.target,
            clients=self.clients,
            rate=rate,
            published=published,
            delivered=len(latencies),
            # From the first publish to the last receipt: a target that falls behind delivers late, and slower.
            seconds=max(elapsed, last_receipt - started_at),
            p50_ms=percentile(latencies, 0.50) * 1000,
            p99_ms=percentile(latencies, 0.99) * 1000,
            # All the work the step caused (its tail included) per second of publishing.
            cpu_percent=100 * cpu_used / elapsed,
            rss_mib=self.rss_per_1000,
            # The hub's share: web process(es), then the bridge.
            cpu_split=(100 * sum(cpu_each[:-1]) / elapsed, 100 * cpu_each[-1] / elapsed)
            if self.target == "hub"
            else None,
            harness_percent=100 * harness_used / elapsed,
        )
        print(f"  {describe(result)}", flush=True)
        return result

    def harness_cpu(self) -> float:
        """CPU seconds of the client processes and of this one (the publisher)."""
        return time.process_time() + sum(cpu_seconds(worker.pid) for worker in self.workers)

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send("stop")
        for worker in self.workers:
            worker.join(15)
            if worker.is_alive():
                worker.kill()


def describe(step: Step) -> str:
    return (
        f"{step.target:6} N={step.clients:<5} {step.rate:>4} msg/s → {step.per_second:>8.0f} deliveries/s "
        f"({100 * step.share:5.1f} % delivered)  p50 {step.p50_ms:7.1f} ms  p99 {step.p99_ms:7.1f} ms  "
        f"CPU {step.cpu_percent:5.1f} %"
        + (f" (web {step.cpu_split[0]:.1f} + bridge {step.cpu_split[1]:.1f})" if step.cpu_split else "")
        + f"  harness {step.harness_percent:5.1f} %"
    )


def sustained(step: Step) -> bool:
    """Every message delivered, as fast as offered (not piling up behind)."""
    return step.share >= 0.999 and step.per_second >= 0.95 * step.rate * step.clients


def median_step(steps: list[Step]) -> Step:
    """The medians of a step's rounds (each figure on its own)."""

    def middle(name: str) -> float:
        return statistics.median(getattr(step, name) for step in steps)

    first = steps[0]
    return Step(
        target=first.target,
        clients=first.clients,
        rate=first.rate,
        published=sum(step.published for step in steps),
        delivered=sum(step.delivered for step in steps),
        seconds=sum(step.seconds for step in steps),
        p50_ms=middle("p50_ms"),
        p99_ms=middle("p99_ms"),
        cpu_percent=middle("cpu_percent"),
        harness_percent=middle("harness_percent"),
        rss_mib=max(step.rss_mib for step in steps),
        cpu_split=None,
        rounds=[step.p99_ms for step in steps],
    )


@dataclass
class Comparison:
    """One step measured on both targets: medians of alternating rounds."""

    clients: int
    rate: int
    hub: Step
    anchor: Step

    @property
    def p99_ratio(self) -> float:
        return self.hub.p99_ms / self.anchor.p99_ms if self.anchor.p99_ms else float("inf")

    @property
    def cpu_ratio(self) -> float:
        anchor = self.anchor.cpu_per_10k
        return self.hub.cpu_per_10k / anchor if anchor else float("inf")


def compare(hub_pool: ClientPool, anchor_pool: ClientPool, rate: int, seconds: float, counter, mqtt_port: int):
    hub_rounds, anchor_rounds = [], []
    for number in range(ROUNDS):
        # Alternate who goes first, so a machine getting busier or quieter favours neither.
        order = [(hub_pool, hub_rounds), (anchor_pool, anchor_rounds)]
        for pool, rounds in order if number % 2 == 0 else order[::-1]:
            rounds.append(pool.step(rate, seconds, next(counter), mqtt_port))
    return Comparison(hub_pool.clients, rate, median_step(hub_rounds), median_step(anchor_rounds))


def highest_sustained(anchor_pool: ClientPool, rates: list[int], seconds: float, counter, mqtt_port: int) -> int:
    """The highest of ``rates`` (rising) that Mosquitto sustains in this run: the first it does not ends the climb."""
    best = 0
    for rate in rates:
        if not sustained(anchor_pool.step(rate, seconds, next(counter), mqtt_port)):
            break
        best = rate
    return best


def measure_sizes(hub: Hub, mosquitto: Mosquitto, *, seconds: float, processes: int, counter) -> list[Comparison]:
    """For each N: the fixed step, then the highest rate Mosquitto sustains here (when higher), both targets."""
    comparisons = []
    for size in SIZES:
        fixed = FIXED_RATES.get(size, 10)
        print(f"\nN = {size} clients", flush=True)
        baseline = hub.web_rss()
        hub_pool = ClientPool("hub", hub.url, hub.headers, size, processes, [*hub.web_pids(), hub.bridge.pid])
        anchor_pool = ClientPool(
            "anchor", f"ws://127.0.0.1:{mosquitto.ws_port}/", {}, size, processes, [mosquitto.process.pid]
        )
        try:
            print(f"  Mosquitto's highest sustained rate here, climbing from {fixed} msg/s:", flush=True)
            climb = [fixed * factor for factor in (2, 4, 8)]
            best = highest_sustained(anchor_pool, climb, seconds, counter, mosquitto.mqtt_port)
            rates = [fixed] + ([best] if best > fixed else [])
            for rate in rates:
                print(f"  {rate} msg/s, {ROUNDS} alternating rounds:", flush=True)
                comparison = compare(hub_pool, anchor_pool, rate, seconds, counter, mosquitto.mqtt_port)
                comparison.hub.rss_mib = (hub.web_rss() - baseline) * 1000 / size
                comparison.hub.idle_mib = hub_pool.rss_per_1000
                comparison.anchor.idle_mib = anchor_pool.rss_per_1000
                comparisons.append(comparison)
        finally:
            hub_pool.close()
            anchor_pool.close()
    return comparisons


def measure_servers(
    directory: Path, mosquitto: Mosquitto, *, seconds: float, processes: int, counter
) -> dict[str, Step]:
    """Each candidate server under the same step (N = 1,000 at its fixed rate, one round): the choice's figures."""
    results: dict[str, Step] = {}
    size = 1000
    for server in SERVERS:
        hub = Hub(directory / server, mosquitto, server=server)
        hub.directory.mkdir()
        try:
            hub.start()
            baseline = hub.web_rss()
            pool = ClientPool("hub", hub.url, hub.headers, size, processes, [*hub.web_pids(), hub.bridge.pid])
            try:
                step = pool.step(FIXED_RATES[size], seconds, next(counter), mosquitto.mqtt_port)
                step.idle_mib = pool.rss_per_1000
                step.rss_mib = (hub.web_rss() - baseline) * 1000 / size
                results[server] = step
            finally:
                pool.close()
        except Exception as exc:  # a candidate that does not run here is reported, not the end of the bench
            print(f"  {server}: could not be measured: {type(exc).__name__}: {exc}", flush=True)
        finally:
            hub.stop()
    return results


def measure_two_processes(
    directory: Path, mosquitto: Mosquitto, rate: int, *, seconds: float, processes: int, counter
) -> Step | None:
    hub = Hub(directory / "two", mosquitto, server=SERVER, workers=2)
    hub.directory.mkdir()
    try:
        hub.start()
        pool = ClientPool("hub", hub.url, hub.headers, 1000, processes, [*hub.web_pids(), hub.bridge.pid])
        try:
            return pool.step(rate, seconds, next(counter), mosquitto.mqtt_port)
        finally:
            pool.close()
    finally:
        hub.stop()


def main(argv: list[str] | None = None) -> int:
    if not Path(MOSQUITTO).exists():
        print(f"mosquitto is not installed ({MOSQUITTO}); nothing measured", file=sys.stderr)
        return 1
    seconds = float(os.environ.get("BENCH_PUSH_SECONDS", "5"))
    processes = int(os.environ.get("BENCH_PUSH_CLIENT_PROCS", str(min(4, os.cpu_count() or 1))))
    print(
        f"load average at start: {', '.join(f'{value:.2f}' for value in os.getloadavg())} "
        f"({os.cpu_count()} CPUs); {processes} client processes; {seconds:.0f} s per step; the hub served by "
        f"{SERVER}, one web process",
        flush=True,
    )
    counter = itertools.count()
    with tempfile.TemporaryDirectory(prefix="bench-push-") as scratch:
        directory = Path(scratch)
        mosquitto = Mosquitto(directory)
        mosquitto.start()
        try:
            hub = Hub(directory, mosquitto, server=SERVER)
            try:
                hub.start()
                comparisons = measure_sizes(hub, mosquitto, seconds=seconds, processes=processes, counter=counter)
            finally:
                hub.stop()
            servers: dict[str, Step] = {}
            if len(SERVERS) > 1 or SERVERS[0] != SERVER:
                print(f"\nthe candidate servers, N = 1,000 at {FIXED_RATES[1000]} msg/s, one round each:", flush=True)
                servers = measure_servers(directory, mosquitto, seconds=seconds, processes=processes, counter=counter)
            top = max((c.rate for c in comparisons if c.clients == 1000), default=FIXED_RATES[1000])
            print(f"\ntwo web processes ({SERVER} --workers 2), N = 1,000 at {top} msg/s:", flush=True)
            two = measure_two_processes(
                directory, mosquitto, top, seconds=seconds, processes=processes, counter=counter
            )
        finally:
            mosquitto.stop()
    print(f"\nload average at end: {', '.join(f'{value:.2f}' for value in os.getloadavg())}", flush=True)
    missed = summarise(comparisons, servers, two)
    if missed:
        print(f"\nmissed: {', '.join(missed)}")
        return 2
    return 0


def summarise(comparisons: list[Comparison], servers: dict[str, Step], two: Step | None) -> list[str]:
    """Print the side-by-side table and the targets; returns the targets missed."""
    print(f"\nhub ({SERVER}) and Mosquitto, medians of {ROUNDS} alternating rounds:")
    print(
        "  N      msg/s | hub deliv/s  share   p50 ms   p99 ms  CPU %  CPU/10k | mosq deliv/s share   p50 ms   p99 ms"
        "  CPU %  CPU/10k | p99 ÷  CPU ÷ | harness CPU %"
    )
    missed = []
    for c in comparisons:
        hub, anchor = c.hub, c.anchor
        print(
            f"  {c.clients:<6} {c.rate:>5} | {hub.per_second:>11.0f} {100 * hub.share:5.1f}% {hub.p50_ms:8.1f} "
            f"{hub.p99_ms:8.1f} {hub.cpu_percent:6.1f} {hub.cpu_per_10k:8.1f} | {anchor.per_second:>12.0f} "
            f"{100 * anchor.share:5.1f}% {anchor.p50_ms:8.1f} {anchor.p99_ms:8.1f} {anchor.cpu_percent:6.1f} "
            f"{anchor.cpu_per_10k:8.1f} | {c.p99_ratio:5.2f} {c.cpu_ratio:6.2f} | "
            f"{hub.harness_percent:5.1f} / {anchor.harness_percent:5.1f}"
        )
        print(f"  {'':14}   hub p99 by round: {', '.join(f'{v:.1f}' for v in hub.rounds)} ms; Mosquitto's: "
              f"{', '.join(f'{v:.1f}' for v in anchor.rounds)} ms")  # fmt: skip
        label = f"N={c.clients} {c.rate} msg/s"
        if hub.share < 0.999:
            missed.append(f"{label}: hub lost messages ({100 * hub.share:.2f} % delivered)")
        if c.p99_ratio > P99_RATIO:
            missed.append(f"{label}: p99 {c.p99_ratio:.1f}x Mosquitto's (≤ {P99_RATIO})")
        if c.cpu_ratio > CPU_RATIO:
            missed.append(f"{label}: CPU per delivery {c.cpu_ratio:.1f}x Mosquitto's (≤ {CPU_RATIO})")
    print("  (CPU/10k: % of a core per 10,000 deliveries/s; the hub's is its web process and the bridge together)")
    if not comparisons:
        missed.append("no step compared (BENCH_PUSH_N is empty)")
    else:
        idle = max(c.hub.idle_mib for c in comparisons)
        busy = max(c.hub.rss_mib for c in comparisons)
        anchor_idle = max(c.anchor.idle_mib for c in comparisons)
        print(
            f"\nmemory per 1,000 connections: hub idle {idle:.1f} MiB (target ≤ {IDLE_MIB}), busy {busy:.1f} MiB "
            f"(target ≤ {BUSY_MIB}); Mosquitto idle {anchor_idle:.1f} MiB"
        )
        if idle > IDLE_MIB:
            missed.append(f"idle memory {idle:.1f} MiB per 1,000 (≤ {IDLE_MIB})")
        if busy > BUSY_MIB:
            missed.append(f"busy memory {busy:.1f} MiB per 1,000 (≤ {BUSY_MIB})")
    if servers:
        print("\nservers, N = 1,000, one round each (the choice's figures):")
        for name, step in servers.items():
            print(
                f"  {name:26} p99 {step.p99_ms:8.1f} ms  CPU/10k {step.cpu_per_10k:6.1f}  idle {step.idle_mib:5.1f} "
                f"MiB  busy {step.rss_mib:5.1f} MiB per 1,000  ({100 * step.share:.1f} % delivered)"
            )
    if two is not None:
        print(
            f"\ntwo web processes: {two.per_second:,.0f} deliveries/s ({100 * two.share:.2f} % delivered), p99 "
            f"{two.p99_ms:.1f} ms, CPU {two.cpu_percent:.1f} % (no target on 2 cores shared with the harness)"
        )
    print("\ntargets:")
    for line in missed or ["all met"]:
        print(f"  {line}")
    return missed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
