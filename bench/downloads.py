"""Signed downloads: how fast is the hub's download path next to nginx? (issue 4's figures)

Measured side by side in one run, all on 127.0.0.1:

1. signature verification alone (pure ``downloads.signing``), µs per link — target ≤ 20 µs;
2. a small file through the hub — the embedded default (``manage.py runhub``) and the production server
   (uvicorn, uvloop, httptools, HUB_MODE=production) — as a ratio to nginx serving it statically: ≥ 0.15;
3. the same with X-Accel (nginx in front, the hub verifies and answers X-Accel-Redirect) as a ratio to nginx
   proxying to a stub upstream that only answers the same X-Accel-Redirect: ≥ 0.5 (and to static nginx);
4. a 200 MB file: throughput as a ratio to nginx sendfile (≥ 0.9 with X-Accel, ≥ 0.5 when the hub streams it
   itself), and the hub's memory while streaming 20 MB and 200 MB (it must not grow with the file size);
5. the audit writer: attempts written per second by ``AuditWriter.flush`` (rows, counts and one bus event per
   attempt in one transaction per batch), on SQLite and on PostgreSQL when it answers;
6. the audit journal: the embedded default's CPU per small download with the journal (each served download
   appended to a file before its bytes go out) and without it (``DOWNLOADS_AUDIT_JOURNAL=``), alternating runs;
7. the download path alone, called in-process: CPU µs per request for a few kinds of request, this checkout
   beside another one (``BENCH_BASELINE_TREE``, e.g. a git worktree of the parent commit), alternating rounds.

    python -m bench downloads          (BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_NGINX_WORKERS change the load)
    python -m bench.downloads audit    (only part 5; BENCH_AUDIT_ROWS; BENCH_POSTGRES_URL as in bench.heating)
    python -m bench.downloads journal  (only part 6; BENCH_JOURNAL_ROUNDS, default 3 of each)
    python -m bench.downloads hotpath [TREE]  (only part 7, against TREE or BENCH_BASELINE_TREE when given;
                                       BENCH_HOTPATH_ROUNDS, default 5; BENCH_HOTPATH_REQUESTS, default 10000)

Needs ``wrk``, ``nginx`` and ``curl`` (Debian packages; ``.ci/run`` installs them) and stops with a clear
message where one is missing. Each hub and nginx serve with one worker process unless told otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bench.asgi_servers import (
    HOST,
    PROJECT_DIR,
    cpu_seconds,
    free_port,
    hub_environment,
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
ACCEL_LOCATION = "/_accel/downloads/"


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


NGINX_CONF = """
worker_processes {workers};
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream hub {{ server {host}:{hub_port}; keepalive 64; }}
    upstream stub {{ server {host}:{stub_upstream_port}; keepalive 64; }}
    # nginx alone: the file served statically (the ceiling).
    server {{
        listen {host}:{static_port};
        location /files/ {{ alias {root}/; }}
    }}
    # nginx in front of the hub, as deploy/nginx.conf does it: the hub verifies, nginx sends the bytes.
    server {{
        listen {host}:{accel_port};
        location {accel} {{ internal; alias {root}/; }}
        location / {{
            proxy_pass http://hub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
        }}
    }}
    # The best any backend can do: an upstream that only answers the same X-Accel-Redirect.
    server {{
        listen {host}:{stub_port};
        location {accel} {{ internal; alias {root}/; }}
        location / {{
            proxy_pass http://stub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen {host}:{stub_upstream_port};
        location / {{
            add_header X-Accel-Redirect {accel}small.bin;
            return 200 "";
        }}
    }}
}}
"""


def start_nginx(tmp: Path, **ports) -> subprocess.Popen:
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=os.environ.get("BENCH_NGINX_WORKERS", "1"),
            user="user root;" if os.geteuid() == 0 else "",
            tmp=tmp,
            host=HOST,
            accel=ACCEL_LOCATION,
            **ports,
        )
    )
    process = subprocess.Popen(
        ["nginx", "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "nginx-stderr.log").open("w"),
    )
    wait_until_answering(f"http://{HOST}:{ports['static_port']}/files/small.bin", process)
    return process


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


def main(argv: list[str]) -> int:
    if argv == ["audit"]:
        print_audit_figures()
        return 0
    seconds = int(os.environ.get("BENCH_SECONDS", "5"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "64"))
    baseline = os.environ.get("BENCH_BASELINE_TREE") or None
    if argv[:1] == ["hotpath"]:
        tree = argv[1] if len(argv) > 1 else baseline
        print_hotpath_figures(Path(tree) if tree else None)
        return 0
    if argv == ["journal"]:
        if shutil.which("wrk") is None:
            print("part 6 needs wrk (apt-get install wrk)", file=sys.stderr)
            return 1
        print_journal_figures(seconds=seconds, connections=connections)
        return 0
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
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-downloads-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        root = tmp / "downloads"
        make_files(root)
        var_dir = tmp / "var"
        environ = hub_env(var_dir, root)
        manage(environ, "migrate", "--noinput", "-v0")
        expiry = "2099-01-01T00:00:00Z"
        paths = {
            name: link_path(manage(environ, "create_secure_link", "bench", expiry, f"{name}.bin", "--create-customer"))
            for name in ("small", "medium", "big")
        }
        ports = {
            name: free_port()
            for name in ("embedded", "production", "accel_hub", "static_port", "accel_port", "stub_port")
        }
        ports["stub_upstream_port"] = free_port()
        try:
            embedded = start(
                [sys.executable, "manage.py", "runhub"],
                hub_env(var_dir, root, HUB_BIND=f"{HOST}:{ports['embedded']}"),
                f"http://{HOST}:{ports['embedded']}{paths['small']}",
                tmp / "embedded.log",
            )
            processes.append(embedded)
            production = start(
                uvicorn_command(ports["production"]),
                production_env(var_dir, root),
                f"http://{HOST}:{ports['production']}{paths['small']}",
                tmp / "production.log",
            )
            processes.append(production)
            accel_hub = start(
                uvicorn_command(ports["accel_hub"]),
                production_env(var_dir, root, DOWNLOADS_ACCEL_LOCATION=ACCEL_LOCATION),
                f"http://{HOST}:{ports['accel_hub']}{paths['small']}",
                tmp / "accel.log",
            )
            processes.append(accel_hub)
            processes.append(
                start_nginx(
                    tmp,
                    hub_port=ports["accel_hub"],
                    root=root,
                    static_port=ports["static_port"],
                    accel_port=ports["accel_port"],
                    stub_port=ports["stub_port"],
                    stub_upstream_port=ports["stub_upstream_port"],
                )
            )
            static_url = f"http://{HOST}:{ports['static_port']}/files/"
            small = {
                "nginx static": static_url + "small.bin",
                "hub, embedded default (runhub)": f"http://{HOST}:{ports['embedded']}{paths['small']}",
                "hub, production server (uvicorn)": f"http://{HOST}:{ports['production']}{paths['small']}",
                "nginx + hub X-Accel": f"http://{HOST}:{ports['accel_port']}{paths['small']}",
                "nginx + stub X-Accel upstream": f"http://{HOST}:{ports['stub_port']}/anything",
            }
            print(
                f"\nload average {os.getloadavg()[0]:.1f} before the runs below (other work on the machine skews them)"
            )
            print(
                f"\n2./3. a {SMALL_SIZE} B file, wrk 2 threads, {connections} connections, {seconds} s each, "
                f"nginx {os.environ.get('BENCH_NGINX_WORKERS', '1')} worker(s), hub 1 process, {os.cpu_count()} CPUs:"
            )
            nginx_pids = process_tree(processes[-1].pid)
            serving = {
                "nginx static": nginx_pids,
                "hub, embedded default (runhub)": process_tree(embedded.pid),
                "hub, production server (uvicorn)": process_tree(production.pid),
                "nginx + hub X-Accel": nginx_pids + process_tree(accel_hub.pid),
                "nginx + stub X-Accel upstream": nginx_pids,
            }
            rates = {}
            for name, url in small.items():
                rate, errors, cpu = requests_per_second(url, serving[name], seconds=seconds, connections=connections)
                rates[name] = rate
                print(
                    f"   {name:34} {rate:9.0f} req/s  {cpu:7.0f} µs CPU a request"
                    + (f"   ({errors} errors!)" if errors else "")
                )
            static = rates["nginx static"]
            stub = rates["nginx + stub X-Accel upstream"]
            accel = rates["nginx + hub X-Accel"]
            print(
                f"   embedded / nginx static        {rates['hub, embedded default (runhub)'] / static:5.2f}  (≥ 0.15)"
            )
            print(
                f"   production / nginx static      {rates['hub, production server (uvicorn)'] / static:5.2f}  (≥ 0.15)"
            )
            print(f"   X-Accel / stub X-Accel         {accel / stub:5.2f}  (≥ 0.5)")
            print(f"   X-Accel / nginx static         {accel / static:5.2f}")

            print(f"\n4. a {BIG_MIB} MB file with curl (median of 3):")
            sendfile = download_mib_per_second(static_url + "big.bin")
            via_accel = download_mib_per_second(f"http://{HOST}:{ports['accel_port']}{paths['big']}")
            streamed = download_mib_per_second(f"http://{HOST}:{ports['production']}{paths['big']}")
            print(f"   nginx sendfile                 {sendfile:8.0f} MiB/s")
            print(
                f"   nginx + hub X-Accel            {via_accel:8.0f} MiB/s   ratio {via_accel / sendfile:4.2f} (≥ 0.9)"
            )
            print(f"   hub streaming it itself        {streamed:8.0f} MiB/s   ratio {streamed / sendfile:4.2f} (≥ 0.5)")
            for name in ("medium", "big"):
                before, peak = peak_memory_while(f"http://{HOST}:{ports['production']}{paths[name]}", production.pid)
                size = MEDIUM_MIB if name == "medium" else BIG_MIB
                print(f"   hub memory streaming {size:3} MB:   {before:6.1f} MiB before, peak {peak:6.1f} MiB")
        except (RuntimeError, subprocess.SubprocessError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            for process in reversed(processes):
                stop(process)
    print_audit_figures()
    print_journal_figures(seconds=seconds, connections=connections)
    print_hotpath_figures(Path(baseline) if baseline else None)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--audit-child"]:
        audit_child()
    else:
        sys.exit(main(sys.argv[1:]))
