"""The simulated panStamp network: a virtual modem on a pty (behind a stable symlink) and a TCP port, room-heater
nodes behind it, and faults on request. One thread runs it all (a :class:`hub.workers.Worker`), so the modem and
the nodes need no locks; other threads ask for faults and bursts through a queue.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import random
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from heating.simulator.modem import VirtualModem
from heating.simulator.node import Room, RoomHeaterNode
from heating.swap.codec import Packet
from hub.workers import Worker

logger = logging.getLogger(__name__)


#: Output held back while the reader is slow, as a USB serial adapter's buffer would; beyond it bytes are lost.
OUTPUT_BUFFER_BYTES = 64 * 1024


def queue_output(pending: bytearray, data: bytes) -> None:
    room = OUTPUT_BUFFER_BYTES - len(pending)
    if room > 0:
        pending += data[:room]


class PtyPort:
    """A pseudo-terminal whose device path is published as a symlink (re-pointed after every replug)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master, self._slave = os.openpty()
        # Raw and without echo before anyone opens it; holding the slave open keeps the master readable
        # (no EIO) while the driver closes and reopens its side.
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.device = os.ttyname(self._slave)
        self.pending = bytearray()
        # The simulator's thread flushes while a test or fault injection writes from another: one at a time,
        # or a write resizes the buffer while a send still holds it (BufferError) and output interleaves.
        self._lock = threading.RLock()
        link.parent.mkdir(parents=True, exist_ok=True)
        temporary = link.with_name(f".{link.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(self.device, temporary)
        os.replace(temporary, link)

    def fileno(self) -> int:
        return self.master

    def read(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> None:
        with self._lock:
            queue_output(self.pending, data)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            while self.pending:
                try:
                    written = os.write(self.master, self.pending)
                except (BlockingIOError, OSError):
                    return
                del self.pending[:written]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if os.readlink(self.link) == self.device:
                self.link.unlink()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpPort:
    """The modem's serial line on a TCP port, as ser2net would offer it; a new connection replaces the old one."""

    def __init__(self, host: str, port: int) -> None:
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()[:2]
        self.client: socket.socket | None = None
        self.pending = bytearray()
        self._lock = threading.RLock()  # as PtyPort's: writes come from more than the simulator's thread

    def sockets(self) -> list[socket.socket]:
        return [self.listener] + ([self.client] if self.client else [])

    def accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except BlockingIOError:
            return
        self.drop_client()
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = client

    def read(self) -> bytes:
        if self.client is None:
            return b""
        try:
            data = self.client.recv(4096)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:
            self.drop_client()
        return data

    def write(self, data: bytes) -> None:
        with self._lock:
            if self.client is None:
                return
            queue_output(self.pending, data)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            while self.pending and self.client is not None:
                try:
                    sent = self.client.send(self.pending)
                except BlockingIOError:
                    return
                except OSError:
                    self.drop_client()
                    return
                del self.pending[:sent]

    def drop_client(self) -> None:
        with self._lock:
            self.pending.clear()
            if self.client is not None:
                with contextlib.suppress(OSError):
                    self.client.close()
                self.client = None

    def close(self) -> None:
        self.drop_client()
        with contextlib.suppress(OSError):
            self.listener.close()


class SimulatedNetwork(Worker):
    name = "panstamp-simulator"

    def __init__(  # noqa: PLR0913 — a test instrument: each of its knobs is keyword-only with a default
        self,
        *,
        nodes: list[RoomHeaterNode] | None = None,
        node_count: int = 3,
        pty_link: Path | str | None = None,
        tcp: tuple[str, int] | None = None,
        time_scale: float = 1.0,
        outdoor: float = 5.0,
        channel: int = 0,
        sync_word: int = 0xB547,
        guard_time: float = 1.5,
        boot_time: float = 0.2,
        tick: float = 0.01,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if pty_link is None and tcp is None:
            raise ValueError("the simulated modem needs a pty link, a TCP address or both")
        self.rng = random.Random(seed)
        self.channel = channel
        self.sync_word = sync_word
        self.nodes = nodes if nodes is not None else self._make_nodes(node_count)
        self.pty_link = Path(pty_link) if pty_link is not None else None
        self.tcp_wanted = tcp
        self.time_scale = time_scale
        self.outdoor = outdoor
        self.tick = tick
        self._clock = clock
        self._started_at = clock()
        self.modem = VirtualModem(
            output=self._output, transmit=self._radio_from_modem, guard_time=guard_time, boot_time=boot_time
        )
        self.pty: PtyPort | None = None
        self.tcp: TcpPort | None = None
        self.tcp_address: tuple[str, int] | None = None
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._plug_at: float | None = None
        #: Every packet the host sent over the air (what tests check the driver transmitted).
        self.transmitted: list[Packet] = []
        #: Set once the pty link and the TCP port exist (``tcp_address`` then holds the bound port).
        self.ports_open = threading.Event()
        #: Called on the simulator's thread once the ports exist (the command prints where they are).
        self.on_ports_open: Callable[[], None] | None = None

    def _make_nodes(self, count: int) -> list[RoomHeaterNode]:
        nodes = []
        for index in range(count):
            # Rooms start apart, one of them a cold store below 0 °C so negative readings show up too.
            start = -4.0 if index == 2 else self.rng.uniform(14.0, 20.0)
            nodes.append(
                RoomHeaterNode(
                    address=0xA1 + index,
                    room=Room(temperature=start, gain_per_hour=0.0 if index == 2 else 10.0),
                    rssi=self.rng.choice((-48.0, -62.5, -75.0, -81.0)),
                    lqi=self.rng.randrange(20, 60),
                    channel=self.channel,
                    sync_word=self.sync_word,
                    rng=random.Random(self.rng.random()),
                )
            )
        return nodes

    # --- the simulated clock ---------------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds since start: real seconds times the time-scale factor."""
        return (self._clock() - self._started_at) * self.time_scale

    def start(self) -> None:
        """Start on a thread and return once the ports exist (so a driver can open them at once)."""
        self.ports_open.clear()
        super().start()
        self.ports_open.wait(5)

    def node(self, address: int) -> RoomHeaterNode:
        for node in self.nodes:
            if node.address == address:
                return node
        raise KeyError(f"no simulated node {address:#04x}")

    # --- requests from other threads -------------------------------------------------------------------------------

    def silence(self, address: int, silent: bool = True) -> None:
        self.node(address).faults.silent = silent

    def stick_sensor(self, address: int, value: float | None) -> None:
        self.node(address).faults.stuck_at = value

    def ignore_commands(self, address: int, ignore: bool = True) -> None:
        self.node(address).faults.relay_ignores_commands = ignore

    def unplug(self, seconds: float | None = None) -> None:
        """Pull the modem out: the pty and the TCP port vanish; plugged back after ``seconds`` (or by :meth:`plug`)."""
        self._requests.put(lambda: self._unplug(seconds))

    def plug(self) -> None:
        self._requests.put(self._plug)

    def emit_raw(self, data: bytes) -> None:
        """Bytes from the modem as they are: garbage, half lines, bad hex."""
        self._requests.put(lambda: self._output(data))

    def burst(self, count: int) -> None:
        """``count`` STATUS packets at once, round-robin over the nodes (their temperature register)."""

        def send() -> None:
            for index in range(count):
                node = self.nodes[index % len(self.nodes)]
                self.modem.receive(node.status_packet(11))

        self._requests.put(send)

    # --- the loop --------------------------------------------------------------------------------------------------

    def serve(self) -> None:
        self._open_ports()
        self.modem.power_on(self._clock())
        self.ports_open.set()
        if self.on_ports_open is not None:
            self.on_ports_open()
        try:
            while not self.stopping.is_set():
                self._step()
        finally:
            self._close_ports()

    def _step(self) -> None:
        ready = self._wait_for_ports()
        real_now = self._clock()
        self._read_ports(ready, real_now)
        self._run_requests()
        if self._plug_at is not None and real_now >= self._plug_at:
            self._plug()
        self.modem.tick(real_now)
        simulated = self.now()
        for node in self.nodes:
            for packet in node.advance(simulated, outdoor=self.outdoor):
                self._radio_to_modem(node, packet)

    def _wait_for_ports(self) -> list:
        """Up to one tick for a port to become readable, flushing what the host has not taken yet; the readable."""
        readable = []
        if self.pty is not None:
            readable.append(self.pty)
        if self.tcp is not None:
            readable += self.tcp.sockets()
        writable = [
            port for port in (self.pty, self.tcp and self.tcp.client) if port is not None and self._pending(port)
        ]
        if not readable:
            self.stopping.wait(self.tick)
            return []
        ready, can_write, _ = select.select(readable, writable, [], self.tick)
        if can_write:
            if self.pty is not None:
                self.pty.flush()
            if self.tcp is not None:
                self.tcp.flush()
        return ready

    def _read_ports(self, ready: list, real_now: float) -> None:
        for source in ready:
            if source is self.pty:
                self.modem.feed(self.pty.read(), real_now)
            elif self.tcp is not None and source is self.tcp.listener:
                self.tcp.accept()
            elif self.tcp is not None and source is self.tcp.client:
                self.modem.feed(self.tcp.read(), real_now)

    def _run_requests(self) -> None:
        """What other threads asked for (faults, unplugging, raw bytes), run on the simulator's own thread."""
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            request()

    def _pending(self, port) -> bool:
        return bool(self.pty.pending) if port is self.pty else bool(self.tcp and self.tcp.pending)

    def _open_ports(self) -> None:
        if self.pty_link is not None:
            self.pty = PtyPort(self.pty_link)
            logger.info("simulated panStamp modem on %s -> %s", self.pty_link, self.pty.device)
        if self.tcp_wanted is not None:
            host, port = self.tcp_address or self.tcp_wanted
            self.tcp = TcpPort(host, port)
            self.tcp_address = self.tcp.address
            logger.info("simulated panStamp modem on socket://%s:%d", *self.tcp_address)

    def _close_ports(self) -> None:
        if self.pty is not None:
            self.pty.close()
            self.pty = None
        if self.tcp is not None:
            self.tcp.close()
            self.tcp = None

    def _unplug(self, seconds: float | None) -> None:
        logger.info("simulated panStamp modem unplugged")
        self.modem.power_off()
        self._close_ports()
        self._plug_at = None if seconds is None else self._clock() + seconds

    def _plug(self) -> None:
        self._plug_at = None
        if self.pty is None and self.tcp is None:
            self._open_ports()
            self.modem.power_on(self._clock())
            logger.info("simulated panStamp modem plugged back in")

    def _output(self, data: bytes) -> None:
        if self.pty is not None:
            self.pty.write(data)
        if self.tcp is not None:
            self.tcp.write(data)

    def _on_air(self, node: RoomHeaterNode) -> bool:
        return node.channel == self.modem.channel and node.sync_word == self.modem.sync_word

    def _radio_from_modem(self, packet: Packet) -> None:
        self.transmitted.append(packet)
        simulated = self.now()
        for node in self.nodes:
            if self._on_air(node):
                for answer in node.receive(packet, simulated):
                    self._radio_to_modem(node, answer)

    def _radio_to_modem(self, node: RoomHeaterNode, packet: Packet) -> None:
        if self._on_air(node):
            self.modem.receive(packet)
