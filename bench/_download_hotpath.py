"""One checkout's download path called in-process: CPU µs per request for a few kinds of request (part 7 of
``bench.downloads``). Prints one JSON object ``{case: µs}``.

It imports the hub from ``BENCH_HOTPATH_TREE`` (put first on ``sys.path``), so the same harness measures another
checkout too, such as a git worktree of the parent commit. It needs only what every version of the download
path has: ``DownloadApp(config, submit=…)`` and ``config_from_settings()``. The audit is not written (``submit``
drops the attempt): what is measured is the path from the request to the last body message.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

TREE = os.path.realpath(os.environ["BENCH_HOTPATH_TREE"])
sys.path[0] = TREE  # instead of this script's folder, whose downloads.py and heating.py are benchmarks

import django  # noqa: E402 (after the tree is on the path)

django.setup()

from downloads import asgi  # noqa: E402

if not os.path.realpath(asgi.__file__).startswith(TREE + os.sep):
    raise SystemExit(f"imported {asgi.__file__}, not the download path of {TREE}")


def scope(path: str, method: str = "GET", headers: tuple[tuple[str, str], ...] = ()) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"user-agent", b"bench/1.0")]
        + [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }


async def receive() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def measure(app, request: dict, expected: int, count: int) -> float:
    statuses = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(max(count // 10, 20)):  # warm-up: caches, the first thread trip, the database connection
        await app(request, receive, send)
    if set(statuses) != {expected}:
        raise SystemExit(f"{request['method']} {request['path']}: answered {sorted(set(statuses))}, not {expected}")
    started = time.process_time()  # every thread of the process: the executor's database work counts too
    for _ in range(count):
        await app(request, receive, send)
    return (time.process_time() - started) * 1e6 / count


async def main() -> None:
    links = json.loads(os.environ["BENCH_HOTPATH_LINKS"])
    count = int(os.environ.get("BENCH_HOTPATH_REQUESTS", "10000"))
    app = asgi.DownloadApp(asgi.config_from_settings(), submit=lambda attempt: None)
    cases = {
        "GET, 4 KiB file": (scope(links["uncapped"]), 200, count),
        "GET Range bytes=100-199": (scope(links["uncapped"], headers=(("range", "bytes=100-199"),)), 206, count),
        "GET two ranges (multipart)": (scope(links["uncapped"], headers=(("range", "bytes=0-9,100-199"),)), 206, count),
        "HEAD": (scope(links["uncapped"], "HEAD"), 200, count),
        "GET, capped link (one count each)": (scope(links["capped"]), 200, max(count // 4, 100)),
        "not authentic (404)": (scope(links["forged"]), 404, count),
    }
    results = {}
    for name, (request, expected, requests) in cases.items():
        results[name] = await measure(app, request, expected, requests)
    app.executor.shutdown()
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
