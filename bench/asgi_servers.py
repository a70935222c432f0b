"""Which ASGI server should serve the hub? Measure the candidates side by side on the same machine.

Each candidate runs ``hub.asgi:application`` the way ``make run`` does (embedded defaults, one worker,
lifespan on, SQLite in a temp dir) on 127.0.0.1; ``wrk`` drives ``/healthz`` (Django's whole request
cycle, a database query and a channel-layer round trip) and one static file served by whitenoise.
Daphne is not a candidate: it has no ASGI lifespan, which the embedded default needs.

    python -m bench asgi_servers            (BENCH_SECONDS, BENCH_CONNECTIONS change the load)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Shipped with Django's admin, so it exists whatever the hub's own static folder holds.
STATIC_PATH = "/static/admin/css/base.css"
TARGETS = {"healthz": "/healthz", "static": STATIC_PATH}


@dataclass(frozen=True)
class Candidate:
    name: str
    command: tuple[str, ...]  # "{port}" is filled in


CANDIDATES = (
    Candidate(
        "uvicorn (uvloop, httptools)",
        (
            *(sys.executable, "-m", "uvicorn", "bench._lifespan_probe:application"),
            *("--host", HOST, "--port", "{port}", "--workers", "1", "--lifespan", "on"),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"),
        ),
    ),
    Candidate(
        "granian (asgi)",
        (
            *(sys.executable, "-m", "granian", "--interface", "asgi"),
            *("--host", HOST, "--port", "{port}", "--workers", "1", "--loop", "uvloop"),
            *("--no-access-log", "--log-level", "warning", "bench._lifespan_probe:application"),
        ),
    ),
)


@dataclass
class Measurement:
    requests_per_second: float
    latency_ms: dict[str, float]  # p50, p90, p99
    errors: int
    cpu_ms_per_request: float = float("nan")  # the server's own CPU time: steadier than req/s on a busy box


@dataclass
class Result:
    candidate: Candidate
    processes: int = 0
    rss_mib: float = 0.0
    lifespan_pid: int | None = None  # the process that completed the hub's lifespan start-up
    lifespan_in_server_process: bool = False
    measurements: dict[str, Measurement] = field(default_factory=dict)
    failure: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, read from /proc (a server's supervisor and worker processes)."""
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):  # the task may have ended meanwhile
                found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def resident_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total_kib += int(match.group(1)) if match else 0
    return total_kib / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used (/proc/<pid>/stat fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> Measurement:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rate:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    latency = {}
    for percentile in ("50", "90", "99"):
        match = re.search(rf"^\s+{percentile}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        latency[f"p{percentile}"] = float(match.group(1)) * _UNITS_MS[match.group(2)] if match else float("nan")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors += sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    return Measurement(float(rate.group(1)), latency, errors)


def run_wrk(url: str, *, seconds: int, connections: int) -> Measurement:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(completed.stdout)


def hub_environment(var_dir: Path) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "HUB_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "MQTT_URL", "DEBUG", "ALLOWED_HOSTS", "SERIAL_PORT"):
        environ.pop(name, None)
    environ.update(
        HUB_MODE="embedded",
        HUB_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'bench.sqlite3'}",
        DJANGO_SETTINGS_MODULE="hub.settings",
        PYTHONPATH=str(PROJECT_DIR),
    )
    return environ


def measure(candidate: Candidate, environ: dict[str, str], *, seconds: int, connections: int) -> Result:
    result = Result(candidate)
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in candidate.command]
    marker = Path(environ["HUB_VAR_DIR"]) / f"lifespan-{port}"
    environ = {**environ, "BENCH_LIFESPAN_MARKER": str(marker)}
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=environ, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://{HOST}:{port}"
            wait_until_answering(base + "/healthz", process)
            result.processes = len(process_tree(process.pid))
            result.lifespan_pid = int(marker.read_text()) if marker.exists() else None
            result.lifespan_in_server_process = result.lifespan_pid == process.pid
            for target, path in TARGETS.items():
                run_wrk(base + path, seconds=2, connections=connections)  # warm-up, not counted
                pids = process_tree(process.pid)
                cpu_before = cpu_seconds(pids)
                measurement = run_wrk(base + path, seconds=seconds, connections=connections)
                requests = measurement.requests_per_second * seconds
                measurement.cpu_ms_per_request = (cpu_seconds(pids) - cpu_before) * 1000 / max(requests, 1)
                result.measurements[target] = measurement
            result.rss_mib = resident_mib(process_tree(process.pid))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            result.failure = str(exc)
        finally:
            stop(process)
        if result.failure:
            log.seek(0)
            result.failure += "\n" + log.read()[-2000:]
    return result


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def median_result(rounds: list[Result]) -> Result:
    """One result per candidate: the median of each figure over the rounds (errors summed)."""
    failed = [r for r in rounds if r.failure]
    if failed:
        return failed[0]
    combined = Result(rounds[0].candidate, processes=rounds[0].processes)
    combined.rss_mib = statistics.median(r.rss_mib for r in rounds)
    combined.lifespan_pid = rounds[0].lifespan_pid
    combined.lifespan_in_server_process = all(r.lifespan_in_server_process for r in rounds)
    for target in TARGETS:
        ms = [r.measurements[target] for r in rounds]
        combined.measurements[target] = Measurement(
            statistics.median(m.requests_per_second for m in ms),
            {key: statistics.median(m.latency_ms[key] for m in ms) for key in ms[0].latency_ms},
            sum(m.errors for m in ms),
            statistics.median(m.cpu_ms_per_request for m in ms),
        )
    return combined


def print_report(by_candidate: dict[str, list[Result]], *, seconds: int, connections: int) -> None:
    rounds = max(len(results) for results in by_candidate.values())
    print(
        f"\nwrk: 2 threads, {connections} connections, {seconds} s per target, {rounds} alternating rounds "
        f"(medians shown); {os.cpu_count()} CPUs; 127.0.0.1; load average now {os.getloadavg()[0]:.1f}"
    )
    header = (
        f"{'server':30} {'target':8} {'req/s':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'errors':>6}  req/s per round"
    )
    print(header)
    print("-" * len(header))
    results = {name: median_result(rounds_) for name, rounds_ in by_candidate.items()}
    for name, result in results.items():
        if result.failure:
            print(f"{name:30} FAILED: {result.failure}")
            continue
        for target, m in result.measurements.items():
            p = m.latency_ms
            per_round = " ".join(f"{r.measurements[target].requests_per_second:.0f}" for r in by_candidate[name])
            print(
                f"{name:30} {target:8} {m.requests_per_second:7.0f} {p['p50']:8.1f} {p['p90']:8.1f} "
                f"{p['p99']:8.1f} {m.cpu_ms_per_request:10.2f} {m.errors:6d}  {per_round}"
            )
    print()
    for name, result in results.items():
        if result.failure:
            continue
        if result.lifespan_pid is None:
            lifespan = "lifespan start-up NOT run"
        elif result.lifespan_in_server_process:
            lifespan = "lifespan ran in the server's own process"
        else:
            lifespan = "lifespan ran in a worker process, not the one started"
        print(f"{name:30} processes: {result.processes}, RSS after a run: {result.rss_mib:.0f} MiB, {lifespan}")
    measured = [r for r in results.values() if not r.failure]
    for other in measured[1:]:
        base = measured[0]
        for target in TARGETS:
            mine, theirs = other.measurements[target], base.measurements[target]
            print(
                f"{other.candidate.name} / {base.candidate.name}, {target}: "
                f"{mine.requests_per_second / theirs.requests_per_second:.2f} x the req/s, "
                f"{mine.cpu_ms_per_request / theirs.cpu_ms_per_request:.2f} x the CPU per request"
            )


def main(argv: list[str]) -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install wrk` (.ci/run does it); no ASGI figures measured.")
        return 1
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "50"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    by_candidate: dict[str, list[Result]] = {candidate.name: [] for candidate in CANDIDATES}
    with tempfile.TemporaryDirectory(prefix="hub-bench-asgi-") as var_dir:
        environ = hub_environment(Path(var_dir))
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT_DIR, env=environ, check=True
        )
        for round_number in range(rounds):
            # Alternate the order so a machine getting busier or quieter favours neither server.
            order = CANDIDATES if round_number % 2 == 0 else tuple(reversed(CANDIDATES))
            for candidate in order:
                print(f"round {round_number + 1}/{rounds}: measuring {candidate.name} …", flush=True)
                result = measure(candidate, environ, seconds=seconds, connections=connections)
                by_candidate[candidate.name].append(result)
    print_report(by_candidate, seconds=seconds, connections=connections)
    return 1 if any(r.failure for results in by_candidate.values() for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
