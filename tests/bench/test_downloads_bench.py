"""bench/downloads.py's part 5 (the audit writer) runs on its own and counts what it says it counts."""

from __future__ import annotations

from bench.downloads import run_audit_child


def test_the_audit_benchmark_writes_every_attempt_with_its_own_bus_event(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_AUDIT_ROWS", "200")
    result = run_audit_child(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    assert isinstance(result, dict), result
    assert result["rows"] == 200
    assert result["bus_events"] == 3 * 200  # three rounds, one event per attempt
    assert result["rows_per_second"] > 0
