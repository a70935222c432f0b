"""The benchmark runner and the ASGI benchmark's reading of wrk (the figures in docs/benchmarks.md come from it)."""

from __future__ import annotations

import math

import pytest

from bench import __main__ as runner
from bench import _support as bench_support
from bench import asgi_servers

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:41000/healthz
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   290.12ms  101.20ms   1.20s    70.00%
    Req/Sec    80.00     30.00   150.00     70.00%
  Latency Distribution
     50%  278.60ms
     75%  320.00ms
     90%  371.30ms
     99%    1.07s
  1650 requests in 10.01s, 1.20MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:    164.84
Transfer/sec:    122.50KB
"""


def test_wrk_output_becomes_rate_latency_percentiles_in_ms_and_errors():
    measured = asgi_servers.parse_wrk(WRK_OUTPUT)
    assert measured.requests_per_second == pytest.approx(164.84)
    assert measured.latency_ms == {"p50": pytest.approx(278.6), "p90": pytest.approx(371.3), "p99": 1070.0}
    assert measured.errors == 4 + 2 + 3


def test_microsecond_latencies_and_a_missing_percentile_are_read_honestly():
    output = WRK_OUTPUT.replace("278.60ms", "812.00us").replace("     90%  371.30ms\n", "")
    measured = asgi_servers.parse_wrk(output)
    assert measured.latency_ms["p50"] == pytest.approx(0.812)
    assert math.isnan(measured.latency_ms["p90"])


def test_output_without_a_rate_is_an_error_not_a_zero():
    with pytest.raises(RuntimeError, match="could not read wrk's output"):
        asgi_servers.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_python_m_bench_finds_every_benchmark_module_but_not_helpers():
    names = runner.benchmark_names()
    assert "asgi_servers" in names
    assert all(not name.startswith("_") for name in names)


def test_an_unknown_benchmark_name_is_refused(capsys):
    assert runner.main(["no_such_bench"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_without_wrk_the_asgi_benchmark_says_so_and_stops(monkeypatch, capsys):
    monkeypatch.setattr(asgi_servers.shutil, "which", lambda name: None)
    assert asgi_servers.main([]) == 1
    assert "wrk is not installed" in capsys.readouterr().out


def test_the_median_of_rounds_keeps_each_figure_and_adds_up_errors():
    candidate = asgi_servers.CANDIDATES[0]

    def round_with(rate: float, errors: int) -> asgi_servers.Result:
        result = asgi_servers.Result(candidate, processes=1, rss_mib=100, lifespan_pid=1)
        result.lifespan_in_server_process = True
        for target in asgi_servers.TARGETS:
            result.measurements[target] = asgi_servers.Measurement(rate, {"p50": rate, "p99": rate}, errors, rate)
        return result

    combined = asgi_servers.median_result([round_with(100, 1), round_with(300, 0), round_with(200, 2)])
    assert combined.measurements["healthz"].requests_per_second == 200
    assert combined.measurements["healthz"].errors == 3
    assert combined.lifespan_in_server_process


def test_a_benchmark_child_that_prints_no_figures_fails_with_its_output(tmp_path):
    with pytest.raises(RuntimeError, match=r"bench\.no_such_bench failed(.|\n)*No module named"):
        bench_support.run_child(
            "bench.no_such_bench", database_url=bench_support.sqlite_url(str(tmp_path)), workdir=str(tmp_path)
        )
