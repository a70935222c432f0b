"""A syslog receiver a test opens itself: a UDP socket on 127.0.0.1 or a unix datagram socket.

Each datagram a SysLogHandler sends is one message, ``<PRI>text`` (PRI =
facility * 8 + severity). The receiver collects them on a thread; tests wait for
the one they expect with a deadline.
"""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from logging.handlers import SysLogHandler
from pathlib import Path

from tests.support.waiting import wait_until

_PRI = re.compile(rb"^<(\d{1,3})>")


@dataclass(frozen=True)
class SyslogMessage:
    facility: int
    severity: int
    text: str


def pri(facility: str, severity: str) -> int:
    """The PRI value syslog puts in front of a message, e.g. ``pri("local3", "warning")`` → 156."""
    return SysLogHandler.facility_names[facility] * 8 + SysLogHandler.priority_names[severity]


class SyslogReceiver:
    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        #: The value to put in SYSLOG_ADDRESS.
        self.address = address
        self.messages: list[SyslogMessage] = []
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._receive, name="syslog-receiver", daemon=True)
        self._thread.start()

    @classmethod
    def udp(cls) -> SyslogReceiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
        return cls(sock, f"{host}:{port}")

    @classmethod
    def unix(cls, path: Path) -> SyslogReceiver:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        return cls(sock, str(path))

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            match = _PRI.match(data)
            assert match, f"not a syslog message: {data!r}"
            value = int(match.group(1))
            text = data[match.end() :].rstrip(b"\x00").decode("utf-8", "replace")
            with self._lock:
                self.raw.append(data)
                self.messages.append(SyslogMessage(facility=value // 8, severity=value % 8, text=text))

    def wait_for(self, needle: str, timeout: float = 10.0) -> SyslogMessage:
        """The first message containing ``needle``; fails after ``timeout`` seconds with what did arrive."""
        found = wait_until(lambda: self.find(needle), timeout=timeout)
        if found:
            return found
        with self._lock:
            seen = "\n".join(message.text[:200] for message in self.messages[-20:])
        raise AssertionError(f"no syslog message containing {needle!r} within {timeout} s; last ones:\n{seen}")

    def find(self, needle: str) -> SyslogMessage | None:
        with self._lock:
            return next((message for message in self.messages if needle in message.text), None)

    def count(self, needle: str) -> int:
        with self._lock:
            return sum(needle in message.text for message in self.messages)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2)
        self.sock.close()


@contextmanager
def open_receiver(kind: str) -> Iterator[SyslogReceiver]:
    """``kind`` is ``udp`` or ``unix``; a unix socket gets a short private folder (paths are limited to 108 bytes)."""
    if kind == "udp":
        receiver = SyslogReceiver.udp()
        try:
            yield receiver
        finally:
            receiver.close()
        return
    folder = Path(tempfile.mkdtemp(prefix="syslog-", dir="/tmp"))
    receiver = SyslogReceiver.unix(folder / "log")
    try:
        yield receiver
    finally:
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)
