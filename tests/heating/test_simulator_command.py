"""manage.py simulate_panstamp as a process: it says where it listens, the driver reaches it there, SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heating.modem import Modem, ModemTimings
from heating.swap import Function, discovery_line
from heating.swap.registers import split_product_code

PROJECT_DIR = Path(__file__).resolve().parents[2]
# The simulator's modem keeps the real 1.5 s guard time; only the waits for answers are shortened.
TIMINGS = ModemTimings(ready_timeout=3.0, answer_timeout=2.0, write_gap=0.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def simulator_process(tmp_path):
    port = free_port()
    link = tmp_path / "modem"
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simulate_panstamp",
            "--link",
            str(link),
            "--tcp",
            f"127.0.0.1:{port}",
            "--nodes",
            "2",
            "--time-scale",
            "60",
            "--seed",
            "4",
        ],
        cwd=PROJECT_DIR,
        env={**os.environ, "HUB_VAR_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        announcement = process.stdout.readline()
        yield process, announcement, link, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def discover(url: str) -> set[int]:
    with Modem(url, timings=TIMINGS) as modem:
        modem.send(discovery_line(source=1))
        heard = set()
        deadline = time.monotonic() + 5
        while len(heard) < 2 and time.monotonic() < deadline:
            packet = modem.read(0.1)
            if packet is not None and packet.function is Function.STATUS and packet.register_id == 0:
                assert split_product_code(packet.value) == (72, 1)
                heard.add(packet.source)
        return heard


@pytest.mark.slow
def test_the_command_serves_the_pty_link_and_the_tcp_port_until_sigterm(simulator_process):
    process, announcement, link, port = simulator_process
    assert f"SERIAL_PORT={link}" in announcement
    assert f"SERIAL_PORT=socket://127.0.0.1:{port}" in announcement
    assert "nodes A1, A2" in announcement
    assert discover(str(link)) == {0xA1, 0xA2}
    assert discover(f"socket://127.0.0.1:{port}") == {0xA1, 0xA2}
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert not link.exists()  # the symlink goes with the simulator


def test_bad_options_are_refused_with_a_message():
    result = subprocess.run(
        [sys.executable, "manage.py", "simulate_panstamp", "--link", "none", "--tcp", "none"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "give --link or --tcp" in result.stderr
