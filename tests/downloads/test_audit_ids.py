"""Each journaled attempt gets an id no other attempt has, in this process or in a process forked from it."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from downloads.audit import Attempt, AuditJournal, _attempt_ids


def test_journaled_attempts_get_distinct_32_hex_digit_ids(tmp_path):
    journal = AuditJournal(tmp_path)
    attempts = [Attempt(at=datetime.now(UTC), method="GET", status=200, outcome="served") for _ in range(2000)]
    for attempt in attempts:
        journal.append(attempt)
    journal.close()
    ids = [attempt.attempt_id for attempt in attempts]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_hands_out_ids_of_its_own():
    before = {_attempt_ids.next() for _ in range(10)}  # the parent's pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then gone without running the rest of the test session
        os.write(write, "".join(_attempt_ids.next() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    child = {text[start : start + 32] for start in range(0, len(text), 32)}
    parent = {_attempt_ids.next() for _ in range(50)}
    assert len(child) == 50
    assert not child & (parent | before)
