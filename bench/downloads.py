"""Signed downloads: how fast is each way of serving a link, next to nginx itself? (issues 4 and 13)

Measured side by side in one run, all on 127.0.0.1, bounded in time, every server stopped at the end:

1. signature verification alone (pure ``downloads.signing``), µs per link — target ≤ 20 µs;
2. the main workload: 10,000 distinct links to a 4 KB file, each three times in a shuffled order, walked by
   ``bench/wrk/links.lua`` (``wrk -t2 -c64 -d20s``, 3 alternating rounds, medians) through every row:
   nginx static (the ceiling), nginx ``secure_link`` (nginx's own module, a reference), the old tool (its Lua
   check, ``bench/oldtool/``, under Debian's libnginx-mod-http-lua), the edge (deploy/nginx.conf's download host
   and deploy/njs/ as shipped: nginx serves links the hub marked, the hub's ``read_edge_log`` audits them from
   nginx's JSON log), nginx + hub X-Accel, nginx + a stub X-Accel upstream, the hub's production server
   (uvicorn) and its embedded default (``runhub``). One nginx (one worker, the same build, modules and ``http``
   settings, a JSON access log per request) serves every nginx row, each on its own ``server`` that differs only
   in its locations. Each row: req/s, server CPU µs a request (nginx, hub and reader, audit included), ÷ static;
3. the same rows on one hot link;
4. the audit after the load: every answer of every hub and edge row must be a stored ``DownloadEvent`` and a
   ``downloads.served``/``downloads.refused`` event; the drain time and the sustained audit rate;
5. a 200 MB file: nginx sendfile, the edge, X-Accel and the hub streaming it (and the hub's memory meanwhile).

Targets (issue 13): edge ≥ 0.6 of static and ≥ 2.5 times the old tool; hub production ≥ 0.15; embedded ≥ 0.08;
200 MB through the edge ≥ 0.9 of sendfile; every request audited. Exit status 2 when one is missed or could not
be measured (a row whose part is missing prints "not available: <why>"), 1 when the bench itself failed.

    python -m bench downloads          (BENCH_SECONDS (20), BENCH_ROUNDS (3), BENCH_CONNECTIONS (64),
                                        BENCH_LINKS (10000), BENCH_NGINX_WORKERS (1) change the load;
                                        BENCH_ROWS=edge,oldtool measures only those rows and static;
                                        BENCH_POSTGRES_URL as in bench._support; BENCH_EDGE_CONF takes the
                                        edge row from another nginx.conf than deploy/nginx.conf)
    python -m bench.downloads audit    (AuditWriter.flush alone; BENCH_AUDIT_ROWS)
    python -m bench.downloads journal  (the audit journal's cost; BENCH_JOURNAL_ROUNDS, default 3 of each)
    python -m bench.downloads hotpath [TREE]  (the download path in-process, against TREE or BENCH_BASELINE_TREE;
                                       BENCH_HOTPATH_ROUNDS, default 5; BENCH_HOTPATH_REQUESTS, default 10000)

Needs ``wrk``, ``nginx`` (with Debian's libnginx-mod-http-js and -lua) and ``curl``, and stops with a clear
message where one is missing. The hub's rows and the edge use a scratch PostgreSQL database (as production
does), the embedded default SQLite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bench._downloads_links import (
    LINK_COUNT,
    REPEAT,
    SECURE_LINK_SECRET,
    hub_links,
    legacy_links,
    secure_link_links,
    write_workload,
)
from bench._downloads_nginx import (
    ACCEL_LOCATION,
    EdgeUnavailable,
    Server,
    accel_body,
    configuration,
    oldtool_body,
    secure_link_body,
    shipped_edge,
    start_nginx,
    static_body,
    stub_body,
)
from bench.asgi_servers import (
    HOST,
    PROJECT_DIR,
    cpu_seconds,
    free_port,
    hub_environment,
    parse_wrk,
    process_tree,
    resident_mib,
    run_wrk,
    stop,
    wait_until_answering,
)

SMALL_SIZE = 4096
BIG_MIB = 200
MEDIUM_MIB = 20
KEYS = "bench:" + "YmVuY2gta2V5LWJlbmNoLWtleS1iZW5jaC1rZXktYmVuY2g="


# --- 1. verification alone ------------------------------------------------------------------------------


def verification_microseconds() -> dict[str, float]:
    from zoneinfo import ZoneInfo

    from downloads.signing import LegacyConfig, parse_key_ring, sign_legacy_link, sign_link, split_link, verify_link

    keys = parse_key_ring(KEYS)
    legacy = LegacyConfig("This is just a long string to set a seed", ZoneInfo("Europe/Madrid"))
    hub = sign_link(keys=keys, customer="acme", expires_at=datetime(2099, 1, 1, tzinfo=UTC), path="dir1/file.bin")
    old = sign_legacy_link(legacy=legacy, customer="acme", expiry="2099-01-01T00:00", path="dir1/file.bin")
    results = {}
    for name, parts in (("hub link (HMAC-SHA256)", hub), ("legacy link (HMAC-SHA1)", old)):
        text = "/".join((parts.signature, parts.customer, parts.expiry, parts.path))

        def once(text=text):
            verify_link(split_link(text), keys=keys, legacy=legacy)

        number = 50_000
        best = min(timeit.repeat(once, number=number, repeat=5))
        results[name] = best / number * 1e6
    return results


# --- 5. the audit writer -------------------------------------------------------------------------------


def audit_child() -> None:
    """In a child process with its own database: flush BENCH_AUDIT_ROWS attempts, print rows/s as JSON."""
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from datetime import timedelta

    from downloads.audit import Attempt, AuditWriter
    from downloads.services import customer_create, link_create
    from messaging.models import OutboxEvent

    root = Path(os.environ["DOWNLOADS_ROOT"])
    root.mkdir(parents=True, exist_ok=True)
    (root / "small.bin").write_bytes(b"x" * SMALL_SIZE)
    customer = customer_create(slug="bench")
    link = link_create(customer=customer, path="small.bin", expires_at=datetime.now(UTC) + timedelta(days=1))
    rows = int(os.environ.get("BENCH_AUDIT_ROWS", "20000"))
    rounds = []
    for _ in range(3):
        writer = AuditWriter(batch_rows=500, max_pending=rows + 1)
        now = datetime.now(UTC)
        for number in range(rows):
            served = number % 4 != 3  # three served for one refused, as a busy day might look
            writer.submit(
                Attempt(
                    at=now,
                    method="GET",
                    status=200 if served else 404,
                    outcome="served" if served else "invalid",
                    customer=customer.slug,
                    path="small.bin",
                    ip="198.51.100.4",
                    user_agent="curl/8.5.0",
                    bytes_sent=SMALL_SIZE if served else 0,
                    link_id=link.pk if served else None,
                    count_pending=served,
                )
            )
        started = time.perf_counter()
        written = writer.flush()
        rounds.append(written / (time.perf_counter() - started))
    print(
        json.dumps(
            {
                "rows_per_second": statistics.median(rounds),
                "rows": rows,
                "bus_events": OutboxEvent.objects.filter(type__startswith="downloads.")
                .exclude(type="downloads.link_created")
                .count(),
            }
        )
    )


def run_audit_child(tmp: Path, database_url: str) -> dict | str:
    environ = hub_env(tmp / "var", tmp / "downloads", DATABASE_URL=database_url)
    done = subprocess.run(
        [sys.executable, "-m", "bench.downloads", "--audit-child"],
        cwd=PROJECT_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else f"failed: {done.stderr.strip()[-300:]}"


def audit_rows_per_second() -> dict[str, dict | str]:
    """Part 5 on SQLite (the embedded default) and PostgreSQL: {database: result or why it could not run}."""
    from bench.heating import scratch_postgres

    results: dict[str, dict | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp_name:
        tmp = Path(tmp_name)
        results["SQLite"] = run_audit_child(tmp, f"sqlite:///{tmp / 'audit.sqlite3'}")
        try:
            url, drop = scratch_postgres()  # a database of its own, dropped afterwards
        except Exception as exc:  # no server here: say so, do not fail the whole run
            results["PostgreSQL"] = f"skipped: {exc}"
        else:
            try:
                results["PostgreSQL"] = run_audit_child(tmp, url)
            finally:
                drop()
    return results


def print_audit_figures() -> None:
    print("\n5. the audit writer, AuditWriter.flush in batches of 500 (median of 3 rounds):")
    for name, result in audit_rows_per_second().items():
        if isinstance(result, str):
            print(f"   {name:12} {result}")
        else:
            print(
                f"   {name:12} {result['rows_per_second']:9.0f} attempts/s written "
                f"({result['rows']} a round; {result['bus_events']} bus events for {3 * result['rows']} attempts)"
            )


# --- 6. the audit journal -------------------------------------------------------------------------------


def journal_cost(*, seconds: int, connections: int) -> dict[str, tuple[float, float]]:
    """{"with the journal" / "without": (median req/s, median server CPU µs a request)} for runhub and a small
    file; runs alternate so a change in the machine's load hits both alike."""
    rounds = int(os.environ.get("BENCH_JOURNAL_ROUNDS", "3"))
    results: dict[str, list[tuple[float, float]]] = {"with the journal": [], "without (DOWNLOADS_AUDIT_JOURNAL=)": []}
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "downloads"
        root.mkdir()
        (root / "small.bin").write_bytes(os.urandom(SMALL_SIZE))
        var_dir = tmp / "var"
        environ = hub_env(var_dir, root)
        manage(environ, "migrate", "--noinput", "-v0")
        path = link_path(
            manage(environ, "create_secure_link", "bench", "2099-01-01T00:00:00Z", "small.bin", "--create-customer")
        )
        variants = list(zip(results, ({}, {"DOWNLOADS_AUDIT_JOURNAL": ""}), strict=True))
        for number in range(rounds):
            # Each goes first every other round: whichever runs second was seen to gain from the first's warm-up.
            for name, extra in variants if number % 2 == 0 else variants[::-1]:
                port = free_port()
                url = f"http://{HOST}:{port}{path}"
                hub = start(
                    [sys.executable, "manage.py", "runhub"],
                    hub_env(var_dir, root, HUB_BIND=f"{HOST}:{port}", **extra),
                    url,
                    tmp / "journal.log",
                )
                try:
                    rate, errors, cpu = requests_per_second(
                        url, process_tree(hub.pid), seconds=seconds, connections=connections
                    )
                    if errors:
                        raise RuntimeError(f"{errors} errors from {url}")
                    results[name].append((rate, cpu))
                    print(f"   ({name}: {rate:.0f} req/s, {cpu:.0f} µs CPU a request)", flush=True)
                finally:
                    stop(hub)
    return {
        name: (statistics.median(rate for rate, _ in runs), statistics.median(cpu for _, cpu in runs))
        for name, runs in results.items()
    }


def print_journal_figures(*, seconds: int, connections: int) -> None:
    print(
        f"\n6. the audit journal, a {SMALL_SIZE} B file from runhub, wrk {connections} connections, {seconds} s a run:"
    )
    figures = journal_cost(seconds=seconds, connections=connections)
    for name, (rate, cpu) in figures.items():
        print(f"   {name:36} {rate:9.0f} req/s  {cpu:7.0f} µs CPU a request")
    (_, with_cpu), (_, without_cpu) = figures.values()
    print(f"   the journal costs                    {with_cpu - without_cpu:+7.0f} µs CPU a request")


# --- 7. the download path in-process, against another checkout --------------------------------------------


def hotpath_cpu(trees: dict[str, Path], *, rounds: int) -> dict[str, dict[str, float]]:
    """{tree name: {case: median CPU µs a request}} over ``rounds`` rounds, each tree measured in a fresh process
    of its own (bench/_download_hotpath.py) on the same links; the trees take turns going first."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-hotpath-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "downloads"
        root.mkdir()
        (root / "small.bin").write_bytes(os.urandom(SMALL_SIZE))
        environ = hub_env(tmp / "var", root)
        manage(environ, "migrate", "--noinput", "-v0")
        expiry = "2099-01-01T00:00:00Z"
        uncapped = link_path(manage(environ, "create_secure_link", "bench", expiry, "small.bin", "--create-customer"))
        capped = link_path(
            manage(environ, "create_secure_link", "bench", expiry, "small.bin", "--max-downloads=10000000")
        )
        links = {
            # As a server hands them over: percent-decoded.
            "uncapped": unquote(uncapped),
            "capped": unquote(capped),
            "forged": unquote(uncapped).replace("/bench/", "/bencx/", 1),
        }
        child = Path(__file__).with_name("_download_hotpath.py")
        order = list(trees.items())
        for number in range(rounds):
            for name, tree in order if number % 2 == 0 else order[::-1]:
                done = subprocess.run(
                    [sys.executable, str(child)],
                    cwd=tree,
                    env={
                        **environ,
                        "PYTHONPATH": str(tree),
                        "BENCH_HOTPATH_TREE": str(tree),
                        "BENCH_HOTPATH_LINKS": json.dumps(links),
                    },
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if done.returncode != 0:
                    raise RuntimeError(
                        f"the download path of {tree} failed:\n{done.stderr[-2000:]}{done.stdout[-500:]}"
                    )
                runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(
                    f"   (round {number + 1}, {name}: "
                    + ", ".join(f"{v:.0f}" for v in runs[name][-1].values())
                    + " µs)",
                    flush=True,
                )
    return {
        name: {case: statistics.median(run[case] for run in measured) for case in measured[0]}
        for name, measured in runs.items()
    }


def print_hotpath_figures(baseline: Path | None) -> None:
    rounds = int(os.environ.get("BENCH_HOTPATH_ROUNDS", "5"))
    trees = {"this checkout": PROJECT_DIR}
    if baseline is not None:
        trees["baseline"] = baseline.resolve()
    print(
        f"\n7. the download path in-process, CPU µs a request (median of {rounds} rounds)"
        + (f"; baseline: {trees['baseline']}" if baseline is not None else "")
        + ":"
    )
    figures = hotpath_cpu(trees, rounds=rounds)
    mine = figures["this checkout"]
    if baseline is None:
        for case, micro in mine.items():
            print(f"   {case:36} {micro:7.1f} µs")
        return
    base = figures["baseline"]
    print(f"   {'':36} {'this':>7}   {'baseline':>8}   change")
    for case, micro in mine.items():
        print(f"   {case:36} {micro:7.1f}   {base[case]:8.1f}   {(micro / base[case] - 1) * 100:+5.1f} %")
    # Each case weighs the same (the capped GET's database write would drown the others in a plain sum).
    change = statistics.geometric_mean(mine[case] / base[case] for case in mine)
    print(f"   {'geometric mean of the changes':36} {'':7}   {'':8}   {(change - 1) * 100:+5.1f} %")


# --- servers --------------------------------------------------------------------------------------------


def missing_tools() -> list[str]:
    return [tool for tool in ("wrk", "nginx", "curl") if shutil.which(tool) is None]


def make_files(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "small.bin").write_bytes(os.urandom(SMALL_SIZE))
    block = os.urandom(1024 * 1024)
    for name, mib in (("medium.bin", MEDIUM_MIB), ("big.bin", BIG_MIB)):
        with open(root / name, "wb") as handle:
            for _ in range(mib):
                handle.write(block)


def hub_env(var_dir: Path, root: Path, **extra: str) -> dict[str, str]:
    environ = {key: value for key, value in hub_environment(var_dir).items() if not key.startswith("DOWNLOADS_")}
    environ.update(DOWNLOADS_ROOT=str(root), DOWNLOADS_KEYS=KEYS, LOG_LEVEL="WARNING", **extra)
    return environ


def production_env(var_dir: Path, root: Path, **extra: str) -> dict[str, str]:
    return hub_env(
        var_dir,
        root,
        HUB_MODE="production",
        DEBUG="false",
        SECRET_KEY="bench-secret-key-" + "x" * 40,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # The web process does not talk to the broker on the download path; production insists on the variable.
        AMQP_URL="amqp://guest:guest@127.0.0.1:5672//",
        **extra,
    )


def manage(environ: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=environ, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def start(command: list[str], environ: dict[str, str], check_url: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=environ, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until_answering(check_url, process)
    except RuntimeError:
        stop(process)
        raise RuntimeError(f"{command[:4]} did not start:\n{log.read_text()[-2000:]}") from None
    return process


def uvicorn_command(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", "hub.asgi:application", "--host", HOST, "--port", str(port)),
        *("--workers", "1", "--lifespan", "on", "--loop", "uvloop", "--http", "httptools"),
        *("--no-access-log", "--log-level", "warning"),
    ]


# --- measurements ---------------------------------------------------------------------------------------


def cpu_after_quiet(pids: list[int], *, limit: float = 60.0) -> float:
    """The servers' CPU seconds once they have gone quiet (< 10 ms of CPU in 0.25 s) or after ``limit`` s.

    The hub writes each request's audit row (and its bus event) on a writer thread; under load that writer may
    fall behind and catch up after the load ends. Counting its work until then keeps CPU per request honest.
    """
    deadline = time.monotonic() + limit
    used = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(pids)
        if now - used < 0.01:
            return now
        used = now
    return used


def requests_per_second(url: str, pids: list[int], *, seconds: int, connections: int) -> tuple[float, int, float]:
    """(req/s, errors, server CPU µs per request): CPU per request stays meaningful on a busy machine."""
    run_wrk(url, seconds=1, connections=connections)  # warm-up, not counted
    cpu_before = cpu_after_quiet(pids)
    measurement = run_wrk(url, seconds=seconds, connections=connections)
    requests = max(measurement.requests_per_second * seconds, 1)
    cpu = cpu_after_quiet(pids) - cpu_before  # with the audit of these requests, written after the load ended
    return measurement.requests_per_second, measurement.errors, cpu * 1e6 / requests


def download_mib_per_second(url: str, *, rounds: int = 3) -> float:
    speeds = []
    for round_number in range(rounds + 1):
        done = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download} %{http_code}", url],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        speed, code = done.stdout.split()
        if code != "200":
            raise RuntimeError(f"{url} answered {code}")
        if round_number or rounds == 1:  # the first of several warms caches and connections: not counted
            speeds.append(float(speed) / (1024 * 1024))
    return statistics.median(speeds)


def peak_memory_while(url: str, pid: int) -> tuple[float, float]:
    """(resident MiB before, peak resident MiB during) the hub process while ``url`` downloads."""
    before = resident_mib(process_tree(pid))
    peak = before
    finished = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not finished.is_set():
            peak = max(peak, resident_mib(process_tree(pid)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        download_mib_per_second(url, rounds=1)
    finally:
        finished.set()
        sampler.join()
    return before, peak


def link_path(url: str) -> str:
    return urlsplit(url).path


# --- 2.-4. the rows: every way of serving a link, under the same load --------------------------------------

WRK_SCRIPT = Path(__file__).with_name("wrk") / "links.lua"
WRK_THREADS = 2
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
# Targets (issue 13), each a ratio of one row's median req/s to another's on the main workload.
TARGETS = (
    ("edge", "static", 0.6),
    ("edge", "oldtool", 2.5),
    ("production", "static", 0.15),
    ("embedded", "static", 0.08),
)
BIG_TARGET = 0.9  # 200 MB through the edge, of nginx sendfile


@dataclass
class Load:
    """One wrk run's figures."""

    rate: float
    completed: int
    errors: int


@dataclass
class Run:
    rate: float
    cpu_us: float  # server CPU (nginx, hub, reader: whatever serves and audits the row) a request
    errors: int
    requests: int  # completed by wrk, warm-up included (each must have its audit row)
    audited: int | None = None
    evented: int | None = None
    drain: float | None = None  # seconds from the load's end to the last audit row stored
    audit_rate: float | None = None  # audit rows stored a second, from the load's start to the last one
    own_cpu_us: float | None = None  # of cpu_us, what the row's own_pids used


@dataclass
class Row:
    key: str
    name: str
    base: str = ""  # http://127.0.0.1:PORT
    prefix: str = "/"  # before each link's four parts
    links: list[str] = field(default_factory=list)
    hot: str = ""
    pids: Callable[[], list[int]] = list
    audit: Callable[[], tuple[int, int]] | None = None  # (audit rows, download events) stored so far
    audit_missing: str = ""  # why this row's audit cannot be counted (then no audit figures)
    unavailable: str = ""  # why this row cannot run at all
    # Of pids, the processes whose share is printed apart (the edge: nginx alone, without the reader's audit).
    own_pids: Callable[[], list[int]] | None = None
    workload: Path | None = None
    main_runs: list[Run] = field(default_factory=list)
    hot_runs: list[Run] = field(default_factory=list)


_WRK_COUNT = re.compile(r"(\d+) requests in")


def wrk(url: str, *, seconds: float, connections: int, workload: Path | None) -> Load:
    """wrk -t2 at ``url`` (or, with ``workload``, at the paths it lists, walked by bench/wrk/links.lua)."""
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s"]
    if workload is not None:
        command += ["-s", str(WRK_SCRIPT), url, "--", str(workload), str(WRK_THREADS)]
    else:
        command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed at {url}: {done.stderr[-1000:]}")
    measured = parse_wrk(done.stdout)
    count = _WRK_COUNT.search(done.stdout)
    return Load(measured.requests_per_second, int(count.group(1)) if count else 0, measured.errors)


def wait_for_audit(row: Row, *, before: tuple[int, int], ended: float, expected: int, limit: float = 180.0):
    """((audit rows, events), drain seconds, time of the last change) once both counts grew by ``expected``
    since ``before`` and stayed still for a second, or stopped growing for 15 s short of it, or ``limit``
    passed since the load ended."""
    last = row.audit()
    last_change = time.monotonic()
    deadline = ended + limit
    while time.monotonic() < deadline:
        time.sleep(0.25)
        counts = row.audit()
        now = time.monotonic()
        if counts != last:
            last, last_change = counts, now
            continue
        quiet = now - last_change
        if (min(counts[0] - before[0], counts[1] - before[1]) >= expected and quiet >= 1.0) or quiet >= 15.0:
            break
    return last, max(0.0, last_change - ended), last_change


def measure(row: Row, url: str, *, workload: Path | None, seconds: int, connections: int) -> Run:
    pids = row.pids()
    before = row.audit() if row.audit is not None else None
    own_pids = row.own_pids() if row.own_pids is not None else []
    cpu_before, own_before = cpu_seconds(pids), cpu_seconds(own_pids)
    started = time.monotonic()
    warm = wrk(url, seconds=1, connections=connections, workload=workload)  # warm-up: audited, not timed
    load = wrk(url, seconds=seconds, connections=connections, workload=workload)
    ended = time.monotonic()
    requests = warm.completed + load.completed
    run = Run(rate=load.rate, cpu_us=0.0, errors=warm.errors + load.errors, requests=requests)
    if before is not None:
        # wrk counts the answers it read; up to one request per connection may be served after it stops
        # reading, so the audit may hold up to `connections` more per wrk run than wrk completed.
        after, drain, last_row = wait_for_audit(row, before=before, ended=ended, expected=requests)
        run.audited, run.evented = after[0] - before[0], after[1] - before[1]
        run.drain = drain
        run.audit_rate = run.audited / max(last_row - started, 1e-9)
    cpu = cpu_after_quiet(pids, limit=30.0) - cpu_before
    run.cpu_us = cpu * 1e6 / max(requests, 1)
    if own_pids:
        run.own_cpu_us = (cpu_seconds(own_pids) - own_before) * 1e6 / max(requests, 1)
    return run


def run_rows(rows: list[Row], *, seconds: int, connections: int) -> None:
    runnable = [row for row in rows if not row.unavailable]
    for number in range(ROUNDS):
        # Alternate the order so a machine getting busier or quieter favours no row.
        order = runnable if number % 2 == 0 else runnable[::-1]
        for row in order:
            for hot in (False, True):
                if hot and not row.hot:
                    continue
                url = row.base + (row.prefix + row.hot if hot else "")
                try:
                    run = measure(
                        row, url, workload=None if hot else row.workload, seconds=seconds, connections=connections
                    )
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    row.unavailable = f"failed: {exc}"
                    break
                (row.hot_runs if hot else row.main_runs).append(run)
                print(
                    f"   (round {number + 1}, {row.name}{', hot link' if hot else ''}: {run.rate:.0f} req/s, "
                    f"{run.cpu_us:.0f} µs CPU a request"
                    + (f", {run.errors} errors" if run.errors else "")
                    + (f", {run.audited} audited of {run.requests}" if run.audited is not None else "")
                    + ")",
                    flush=True,
                )


def median_of(runs: list[Run], attribute: str) -> float | None:
    values = [getattr(run, attribute) for run in runs if getattr(run, attribute) is not None]
    return statistics.median(values) if values else None


def print_rows(rows: list[Row], *, hot: bool) -> dict[str, float]:
    """The table of one workload; returns {row key: median req/s}."""
    rates = {}
    for row in rows:
        runs = row.hot_runs if hot else row.main_runs
        if runs:
            rates[row.key] = median_of(runs, "rate")
    static_rate = rates.get("static")
    for row in rows:
        runs = row.hot_runs if hot else row.main_runs
        if row.unavailable:
            print(f"   {row.name:36} not available: {row.unavailable}")
            continue
        if not runs:
            continue
        rate = rates[row.key]
        ratio = f"{rate / static_rate:5.2f}" if static_rate else "  -  "
        errors = sum(run.errors for run in runs)
        print(
            f"   {row.name:36} {rate:9,.0f} req/s  {median_of(runs, 'cpu_us'):6.0f} µs  {ratio}   "
            + " ".join(f"{run.rate:,.0f}" for run in runs)
            + (f"   ({errors} non-2xx or socket errors!)" if errors else "")
            + (f"   (nginx alone {median_of(runs, 'own_cpu_us'):.0f} µs)" if row.own_pids is not None else "")
        )
    return rates


def print_audit(rows: list[Row], *, connections: int) -> bool:
    """The audit after the load, per audited row; False when a row lost (or could not count) a request."""
    complete = True
    for row in rows:
        if row.unavailable or (row.audit is None and not row.audit_missing):
            continue
        if row.audit_missing:
            print(f"   {row.name:36} not available: {row.audit_missing}")
            complete = False
            continue
        for label, runs in ((f"{len(row.links):,} links", row.main_runs), ("hot link", row.hot_runs)):
            if not runs:
                continue
            audited = sum(run.audited for run in runs)
            events = sum(run.evented for run in runs)
            requests = sum(run.requests for run in runs)
            lost = max(0, requests - audited)
            # Served after wrk stopped reading: at most one per connection and wrk run (two runs a measurement).
            extra_allowed = 2 * connections * len(runs)
            ok = lost == 0 and audited - requests <= extra_allowed and events >= requests
            complete &= ok
            print(
                f"   {row.name + ', ' + label:50} {audited:9,} rows {events:9,} events for {requests:9,} answers "
                f"{'(all)' if ok else '(MISSING ' + str(lost) + ')' if lost else '(too many?)'}  "
                f"drain {median_of(runs, 'drain'):5.1f} s  {median_of(runs, 'audit_rate'):7,.0f} rows/s"
            )
    return complete


def audit_counter(database_url: str) -> Callable[[], tuple[int, int]]:
    """A function answering (download audit rows, downloads.served/refused events) in the database now: events
    waiting in the outbox plus those the embedded event log stored (the relay deletes what it published)."""
    sql = (
        "SELECT (SELECT count(*) FROM downloads_downloadevent), "
        "(SELECT count(*) FROM messaging_outboxevent WHERE type IN ('downloads.served', 'downloads.refused')) + "
        "(SELECT count(*) FROM messaging_event WHERE type IN ('downloads.served', 'downloads.refused'))"
    )
    if database_url.startswith("sqlite:///"):
        import sqlite3

        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30, check_same_thread=False)

        def count() -> tuple[int, int]:
            return tuple(connection.execute(sql).fetchone())

        return count
    import psycopg

    connection = psycopg.connect(database_url, autocommit=True)

    def count_postgres() -> tuple[int, int]:
        return tuple(connection.execute(sql).fetchone())

    return count_postgres


def print_targets(rates: dict[str, float], big: dict[str, float]) -> list[str]:
    """Print each target against the medians; the ones missed (or not measurable)."""
    missed = []
    names = {
        "static": "nginx static",
        "oldtool": "the old tool",
        "edge": "edge",
        "production": "hub production",
        "embedded": "hub embedded",
    }
    for row, other, target in TARGETS:
        label = f"{names[row]} / {names[other]}"
        if row not in rates or other not in rates:
            print(f"   {label:34}   -    (≥ {target})  not measured")
            missed.append(label)
            continue
        ratio = rates[row] / rates[other]
        met = ratio >= target
        print(f"   {label:34} {ratio:5.2f}  (≥ {target})  {'met' if met else 'NOT MET'}")
        if not met:
            missed.append(label)
    if "edge" in big and "sendfile" in big:
        ratio = big["edge"] / big["sendfile"]
        met = ratio >= BIG_TARGET
        print(f"   {'200 MB: edge / nginx sendfile':34} {ratio:5.2f}  (≥ {BIG_TARGET})  {'met' if met else 'NOT MET'}")
        if not met:
            missed.append("200 MB through the edge")
    else:
        print(f"   {'200 MB: edge / nginx sendfile':34}   -    (≥ {BIG_TARGET})  not measured")
        missed.append("200 MB through the edge")
    return missed


def print_big(rows: dict[str, Row], big_links: dict[str, str], production: subprocess.Popen | None) -> dict[str, float]:
    rounds = 3
    print(f"\n5. a {BIG_MIB} MB file with curl, {rounds} alternating rounds after one not counted, medians:")
    sources = {
        "sendfile": ("nginx sendfile (static)", "static"),
        "edge": ("edge (nginx verifies, sends)", "edge"),
        "accel": ("nginx + hub X-Accel", "accel"),
        "streamed": ("hub streaming it itself", "production"),
    }
    urls, failures = {}, {}
    for key, (_label, row_key) in sources.items():
        row = rows.get(row_key)
        if row is None or row.unavailable:
            failures[key] = f"not available: {row.unavailable if row else 'no such row'}"
        else:
            urls[key] = row.base + row.prefix + big_links[row_key]
    measured: dict[str, list[float]] = {key: [] for key in urls}
    order = list(urls)
    for number in range(rounds + 1):
        for key in order if number % 2 == 0 else order[::-1]:
            if key in failures:
                continue
            try:
                speed = download_mib_per_second(urls[key], rounds=1)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                failures[key] = f"failed: {exc}"
                continue
            if number:  # the first round warms caches and connections
                measured[key].append(speed)
    speeds = {key: statistics.median(values) for key, values in measured.items() if values and key not in failures}
    for key, (label, _row_key) in sources.items():
        if key not in speeds:
            print(f"   {label:34} {failures.get(key, 'not measured')}")
            continue
        ratio = (
            f"   ratio {speeds[key] / speeds['sendfile']:4.2f}" if "sendfile" in speeds and key != "sendfile" else ""
        )
        rounds_text = " ".join(f"{value:,.0f}" for value in measured[key])
        print(f"   {label:34} {speeds[key]:8,.0f} MiB/s{ratio}   ({rounds_text})")
    if production is not None and "streamed" in urls:
        before, peak = peak_memory_while(urls["streamed"], production.pid)
        print(f"   hub memory streaming {BIG_MIB} MB:      {before:6.1f} MiB before, peak {peak:6.1f} MiB")
    return speeds


def edge_reader_available() -> str:
    """Empty when the hub's edge log reader is there, else why not."""
    if not (PROJECT_DIR / "downloads" / "edge_log_reader.py").exists():
        return "the hub's edge log reader (downloads/edge_log_reader.py) is not there yet"
    if not (PROJECT_DIR / "downloads" / "management" / "commands" / "read_edge_log.py").exists():
        return "manage.py read_edge_log is not there yet"
    return ""


class Bench:
    """The servers, links and rows of parts 2-5 in one temporary folder; :meth:`close` stops everything."""

    def __init__(self, tmp: Path, *, link_count: int) -> None:
        self.tmp = tmp
        self.link_count = link_count
        self.processes: list[subprocess.Popen] = []
        self.drop_postgres: Callable[[], None] | None = None
        self.root = tmp / "downloads"
        self.var_dir = tmp / "var"
        self.markers = tmp / "edge-markers"
        self.edge_log = tmp / "edge-log" / "edge-downloads.json"
        for folder in (self.var_dir, self.markers, self.edge_log.parent, self.var_dir / "production"):
            folder.mkdir(parents=True)
        make_files(self.root)
        self.edge_env = {"DOWNLOADS_EDGE_DIR": str(self.markers), "DOWNLOADS_EDGE_LOG": str(self.edge_log)}
        self.embedded_url = f"sqlite:///{self.var_dir / 'embedded.sqlite3'}"
        self.postgres_url = ""
        self.database_note = ""
        self.edge_unavailable = ""
        self.reader_missing = edge_reader_available()
        self.reader: subprocess.Popen | None = None

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        if self.drop_postgres is not None:
            self.drop_postgres()

    def record_links(self) -> None:
        from bench._support import scratch_postgres

        try:
            self.postgres_url, self.drop_postgres = scratch_postgres("bench_downloads")
            self.database_note = "PostgreSQL (a scratch database)"
        except Exception as exc:  # no server here: the production rows run on SQLite and say so
            self.postgres_url = f"sqlite:///{self.var_dir / 'production.sqlite3'}"
            self.database_note = f"SQLite, PostgreSQL not reachable ({exc})"
        print(f"\nrecording {self.link_count:,} + 2 links in each database (the hub's link_create) …", flush=True)
        common = {"count": self.link_count, "small": "small.bin", "big": "big.bin", "workdir": str(self.var_dir)}
        self.production_links = hub_links(
            database_url=self.postgres_url, env=hub_env(self.var_dir, self.root, **self.edge_env), **common
        )
        self.embedded_links = hub_links(database_url=self.embedded_url, env=hub_env(self.var_dir, self.root), **common)
        markers = sum(1 for _ in self.markers.iterdir())
        print(
            f"   {self.production_links['seconds']} s ({self.database_note}), {self.embedded_links['seconds']} s "
            f"(SQLite); {markers:,} edge markers written",
            flush=True,
        )
        if not markers:
            self.edge_unavailable = (
                "the hub wrote no edge markers for its links (DOWNLOADS_EDGE_DIR: downloads/edge.py not there yet)"
            )
        self.legacy = legacy_links(count=self.link_count + 1, path="small.bin")
        self.secure = secure_link_links(count=self.link_count + 1, path="small.bin")

    def start_hubs(self) -> None:
        self.hub_ports = {name: free_port() for name in ("embedded", "production", "accel_hub")}
        self.production_environ = production_env(
            self.var_dir,
            self.root,
            DATABASE_URL=self.postgres_url,
            HUB_VAR_DIR=str(self.var_dir / "production"),
            **self.edge_env,
        )
        hot = HUB_PREFIX + self.production_links["hot"]
        self.embedded = self.start(
            [sys.executable, "manage.py", "runhub"],
            hub_env(
                self.var_dir,
                self.root,
                DATABASE_URL=self.embedded_url,
                HUB_BIND=f"{HOST}:{self.hub_ports['embedded']}",
            ),
            f"http://{HOST}:{self.hub_ports['embedded']}{HUB_PREFIX}{self.embedded_links['hot']}",
            "embedded",
        )
        self.production = self.start(
            uvicorn_command(self.hub_ports["production"]),
            self.production_environ,
            f"http://{HOST}:{self.hub_ports['production']}{hot}",
            "production",
        )
        self.accel_hub = self.start(
            uvicorn_command(self.hub_ports["accel_hub"]),
            {**self.production_environ, "DOWNLOADS_ACCEL_LOCATION": ACCEL_LOCATION},
            f"http://{HOST}:{self.hub_ports['accel_hub']}{hot}",
            "accel",
        )
        if not self.reader_missing:
            # As production's `edge-log` service: the reader follows nginx's edge log for the whole run.
            self.reader = subprocess.Popen(
                [sys.executable, "manage.py", "read_edge_log"],
                cwd=PROJECT_DIR,
                env=self.production_environ,
                stdout=(self.tmp / "reader.log").open("w"),
                stderr=subprocess.STDOUT,
            )
            self.processes.append(self.reader)

    def start(self, command: list[str], environ: dict[str, str], check_url: str, name: str) -> subprocess.Popen:
        process = start(command, environ, check_url, self.tmp / f"{name}.log")
        self.processes.append(process)
        return process

    def start_nginx(self) -> None:
        self.ports = {name: free_port() for name in ("static", "secure", "oldtool", "edge", "accel", "stub", "up")}
        hub = f"{HOST}:{self.hub_ports['accel_hub']}"
        self.edge = None
        if not self.edge_unavailable:
            try:
                self.edge = shipped_edge(root=self.root, markers=self.markers, log=self.edge_log, hub=hub)
            except (EdgeUnavailable, ValueError) as exc:
                self.edge_unavailable = str(exc)
        servers = [
            Server(self.ports["static"], static_body(self.root), self.tmp / "access-static.json"),
            Server(self.ports["secure"], secure_link_body(self.root, SECURE_LINK_SECRET), self.tmp / "access-sl.json"),
            Server(self.ports["oldtool"], oldtool_body(), self.tmp / "access-oldtool.json"),
            Server(self.ports["accel"], accel_body(self.root, hub), self.tmp / "access-accel.json"),
            Server(self.ports["stub"], stub_body(self.root, self.ports["up"]), self.tmp / "access-stub.json"),
            Server(self.ports["up"], stub_upstream_body(), None),  # the stub's backend: not a row, not logged
        ]
        if self.edge is not None:
            # The shipped server writes its own JSON log (the reader's), so none is added here.
            servers.append(Server(self.ports["edge"], self.edge.server, None))
        check = f"http://{HOST}:{self.ports['static']}/{self.production_links['links'][0]}"
        try:
            nginx = start_nginx(self.tmp, configuration(self.tmp, servers, edge=self.edge, base_dir=self.root), check)
        except RuntimeError as exc:
            if self.edge is None:
                raise
            # The shipped edge did not load here: measure the others and say why the edge row could not run.
            self.edge_unavailable = f"nginx refused the shipped edge configuration: {str(exc)[-400:]}"
            self.edge = None
            nginx = start_nginx(self.tmp, configuration(self.tmp, servers[:-1], edge=None, base_dir=self.root), check)
        self.processes.append(nginx)
        self.nginx = nginx

    def rows(self) -> list[Row]:
        def nginx_pids() -> list[int]:
            return process_tree(self.nginx.pid)

        def edge_pids() -> list[int]:
            # nginx, the hub behind it (links without a marker) and the reader writing the audit.
            return nginx_pids() + process_tree(self.accel_hub.pid) + ([self.reader.pid] if self.reader else [])

        postgres_audit = audit_counter(self.postgres_url)
        embedded_audit = audit_counter(self.embedded_url)
        links, hot = self.production_links["links"], self.production_links["hot"]
        ports = {key: f"http://{HOST}:{port}" for key, port in (self.ports | self.hub_ports).items()}
        edge_prefix = self.edge.prefix if self.edge is not None else "/"
        rows = [
            Row("static", "nginx static", ports["static"], "/", links, hot, nginx_pids),
            Row("secure", "nginx secure_link (reference)", ports["secure"], "/", self.secure[:-1], self.secure[-1],
                nginx_pids),
            Row("oldtool", "old tool (nginx + Lua)", ports["oldtool"], "/", self.legacy[:-1], self.legacy[-1],
                nginx_pids),
            Row("edge", "edge (nginx serves, hub governs)", ports["edge"], edge_prefix, links, hot, edge_pids,
                postgres_audit if self.reader else None, audit_missing=self.reader_missing,
                unavailable=self.edge_unavailable, own_pids=nginx_pids),
            Row("accel", "nginx + hub X-Accel", ports["accel"], HUB_PREFIX, links, hot,
                lambda: nginx_pids() + process_tree(self.accel_hub.pid), postgres_audit),
            Row("stub", "nginx + stub X-Accel upstream", ports["stub"], HUB_PREFIX, links, "", nginx_pids),
            Row("production", "hub, production server (uvicorn)", ports["production"], HUB_PREFIX, links, hot,
                lambda: process_tree(self.production.pid), postgres_audit),
            Row("embedded", "hub, embedded default (runhub)", ports["embedded"], HUB_PREFIX,
                self.embedded_links["links"], self.embedded_links["hot"], lambda: process_tree(self.embedded.pid),
                embedded_audit),
        ]  # fmt: skip
        chosen = [key for key in os.environ.get("BENCH_ROWS", "").split(",") if key]
        if chosen:  # a quicker look at a few rows; static stays, every ratio is of it
            rows = [row for row in rows if row.key == "static" or row.key in chosen]
        for row in rows:
            row.workload = write_workload(self.tmp / f"workload-{row.key}.txt", row.prefix, row.links)
        return rows


HUB_PREFIX = "/dl/"  # DOWNLOADS_PREFIX's default: the hub's links on its own host


def stub_upstream_body() -> str:
    return f"""
        location / {{
            add_header X-Accel-Redirect {ACCEL_LOCATION}small.bin;
            return 200 "";
        }}
    """


def measure_all(*, seconds: int, connections: int, link_count: int) -> tuple[dict[str, float], dict[str, float], bool]:
    """Parts 2-5: (main workload medians by row, 200 MB speeds, whether every request was audited)."""
    with tempfile.TemporaryDirectory(prefix="bench-downloads-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        bench = Bench(tmp, link_count=link_count)
        try:
            bench.record_links()
            bench.start_hubs()
            bench.start_nginx()
            rows = bench.rows()
            print(
                f"\nload average {os.getloadavg()[0]:.1f} before the runs below (other work on the machine skews them)"
            )
            print(
                f"\n2.-4. a {SMALL_SIZE} B file, wrk {WRK_THREADS} threads, {connections} connections, {seconds} s a "
                f"run after 1 s of warm-up, {ROUNDS} alternating rounds; nginx "
                f"{os.environ.get('BENCH_NGINX_WORKERS', '1')} worker with a JSON access log, hub 1 process, "
                f"{os.cpu_count()} CPUs; hub rows and the edge on {bench.database_note}:",
                flush=True,
            )
            run_rows(rows, seconds=seconds, connections=connections)
            print(
                f"\n2. main workload: {link_count:,} distinct links, each {REPEAT} times in a shuffled order "
                "(bench/wrk/links.lua), medians:"
            )
            print(f"   {'':36} {'req/s':>15}  {'CPU/req':>8}  ÷ static   req/s per round")
            rates = print_rows(rows, hot=False)
            print("\n3. one hot link, fetched over and over, medians:")
            print_rows(rows, hot=True)
            print(
                "\n4. the audit after the load: rows and downloads.served/refused events stored for the answers "
                "wrk read (all rounds), the time from the load's end to the last row, and rows stored a second "
                "from the load's start to the last row (medians):"
            )
            audit_complete = print_audit(rows, connections=connections)
            big_link = bench.production_links["big"]
            big_links = {"static": "x/x/x/big.bin", "edge": big_link, "accel": big_link, "production": big_link}
            big = print_big({row.key: row for row in rows}, big_links, bench.production)
        finally:
            bench.close()
    return rates, big, audit_complete


def main(argv: list[str]) -> int:
    seconds = int(os.environ.get("BENCH_SECONDS", "20"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "64"))
    link_count = int(os.environ.get("BENCH_LINKS", str(LINK_COUNT)))
    baseline = os.environ.get("BENCH_BASELINE_TREE") or None
    if argv[:1] in (["audit"], ["journal"], ["hotpath"]):
        return other_parts(argv, seconds=seconds, connections=connections, baseline=baseline)
    print("1. signature verification alone (best of 5 rounds of 50,000):")
    for name, micro in verification_microseconds().items():
        print(f"   {name:28} {micro:6.2f} µs per link   (target ≤ 20 µs)")
    missing = missing_tools()
    if missing:
        print(
            f"\nThe server figures need {', '.join(missing)}, missing here: install the Debian packages "
            f"(apt-get install {' '.join(missing)}) or run .ci/run, then `python -m bench downloads` again.",
            file=sys.stderr,
        )
        return 1
    # Stopped from outside (timeout, kill): unwind, so every server it started stops and its database is dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rates, big, audit_complete = measure_all(seconds=seconds, connections=connections, link_count=link_count)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print("\ntargets (main workload medians):")
    missed = print_targets(rates, big)
    if not audit_complete:
        print(f"   {'every request audited and evented':34}   -    NOT SHOWN (see part 4)")
        missed.append("audit")
    if missed:
        print(f"\nmissed or not measured: {', '.join(missed)}")
        return 2
    return 0


def other_parts(argv: list[str], *, seconds: int, connections: int, baseline: str | None) -> int:
    """``audit``, ``journal`` and ``hotpath``: the figures behind earlier choices, run on request only."""
    if argv == ["audit"]:
        print_audit_figures()
        return 0
    if argv[:1] == ["hotpath"]:
        tree = argv[1] if len(argv) > 1 else baseline
        print_hotpath_figures(Path(tree) if tree else None)
        return 0
    if shutil.which("wrk") is None:
        print("the journal figures need wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    print_journal_figures(seconds=min(seconds, 8), connections=connections)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--audit-child"]:
        audit_child()
    else:
        sys.exit(main(sys.argv[1:]))
