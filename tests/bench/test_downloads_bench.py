"""bench/downloads.py's part 5 (the audit writer) and part 7 (the download path against another checkout) run on
their own and measure what they say they measure."""

from __future__ import annotations

import pytest

from bench.asgi_servers import PROJECT_DIR
from bench.downloads import hotpath_cpu, run_audit_child


def test_the_audit_benchmark_writes_every_attempt_with_its_own_bus_event(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_AUDIT_ROWS", "200")
    result = run_audit_child(tmp_path, f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    assert isinstance(result, dict), result
    assert result["rows"] == 200
    assert result["bus_events"] == 3 * 200  # three rounds, one event per attempt
    assert result["rows_per_second"] > 0


@pytest.mark.slow
def test_the_download_path_is_measured_in_each_tree_for_every_kind_of_request(monkeypatch):
    monkeypatch.setenv("BENCH_HOTPATH_REQUESTS", "40")
    figures = hotpath_cpu({"this checkout": PROJECT_DIR, "baseline": PROJECT_DIR}, rounds=1)
    assert set(figures) == {"this checkout", "baseline"}
    for cases in figures.values():
        assert len(cases) == 6
        assert "GET, capped link (one count each)" in cases
        assert all(micro > 0 for micro in cases.values())


@pytest.mark.slow
def test_a_tree_without_the_download_path_is_an_error_not_a_figure(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOTPATH_REQUESTS", "40")
    with pytest.raises(RuntimeError, match="failed"):
        hotpath_cpu({"empty": tmp_path, "this checkout": PROJECT_DIR}, rounds=1)
