"""Debian's ``mosquitto_sub`` as the foreign subscriber, started so a test knows when its subscription holds.

Without ``-d`` it prints nothing when the broker acknowledges the subscription, so a test could only pause and
hope; with ``-d`` (and line buffering, since into a pipe stdio would hold the lines until it exits) it prints
``Subscribed (mid: …)`` then, and its protocol steps, which :func:`messages` leaves out again.
"""

from __future__ import annotations

import subprocess

_STEPS = ("Client ", "Subscribed (mid")


def start_subscriber(command: list[str]) -> subprocess.Popen:
    """Run ``command`` (a ``mosquitto_sub`` command line) and return once the broker acknowledged its subscription."""
    process = subprocess.Popen(["stdbuf", "-oL", *command, "-d"], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    while line and not line.startswith("Subscribed (mid"):
        line = process.stdout.readline()
    assert line, "mosquitto_sub exited before its subscription was acknowledged"
    return process


def messages(process: subprocess.Popen, *, timeout: float) -> str:
    """What ``process`` printed for the messages it received, one a line, once it exited."""
    # Not communicate(): it reads the pipe itself and would miss what start_subscriber left in the file's buffer.
    process.wait(timeout=timeout)
    return "\n".join(line for line in process.stdout.read().splitlines() if not line.startswith(_STEPS))
