"""Issue 11's page figure: the home page's first load in Chromium (HTML + assets) ≤ 500 ms, with its assets ≤ 300 KB
compressed.

The hub (embedded default, a fresh SQLite file, three rooms with readings and a signed-in household member) under
uvicorn on a thread; Debian's Chromium through Playwright. Each load is a cold one: a new browser context (no
cache, the session cookie only), ``page.goto("/")`` to the load event, timed by the browser's own navigation
timing (request start of the document to the end of its load event). ``BENCH_PAGE_LOADS`` loads (default 15):
median and worst. The size is what the document and every asset it loaded (stylesheets, scripts, images) weigh
gzip-compressed (level 9, as whitenoise's production storage writes them), beside their raw size; the state fetch
and the live socket that start after the load are not counted.

    python -m bench pages        (HUB_TEST_CHROMIUM points at another Chromium; without one it says so and skips)
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench._support import run_child, setup_django, sqlite_url

TARGET_LOAD_MS = 500.0
TARGET_ASSETS_KB = 300.0
CHROMIUM = Path(os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "plum-orchard-velvet-42"


def a_house() -> None:
    """Three rooms, each with its heater node's temperature and relay readings, and a household member."""
    from datetime import timedelta

    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from heating.models import Node, Reading, Room, RoomHeater

    heard = timezone.now() - timedelta(seconds=30)
    for number, (slug, name) in enumerate([("living", "Living room"), ("kitchen", "Kitchen"), ("bedroom", "Bedroom")]):
        address = 0xA1 + number
        node = Node.objects.create(address=address, manufacturer_id=72, product_id=1, location=slug, last_heard=heard)
        Reading.objects.create(
            node=node, endpoint_id=f"{address}.11.0", name="RoomTemp", value=20.5, unit="C", recorded_at=heard
        )
        Reading.objects.create(node=node, endpoint_id=f"{address}.12.0", name="Heating", value=True, recorded_at=heard)
        room = Room.objects.create(
            slug=slug, name=name, position=number, temperature_node=node, temperature_endpoint="RoomTemp"
        )
        RoomHeater.objects.create(room=room, node=node)
    user = User.objects.create_user("alice", password=PASSWORD)
    user.groups.add(Group.objects.get(name="household"))


def child() -> None:
    if not os.environ.get("BENCH_PAGES_SCRATCH"):
        # It writes rooms and a user: only ever into the scratch database run_child made for it.
        raise SystemExit("bench.pages --child runs from bench.pages' main, with a scratch database")
    setup_django()
    a_house()
    if not CHROMIUM.exists():
        print(json.dumps({"skipped": f"no Chromium at {CHROMIUM}"}))
        return
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API parks a loop on this thread
    from hub.asgi import build_application
    from tests.browser.support import HubServer

    server = HubServer(build_application(run_embedded=False))
    try:
        print(json.dumps(measure(server.url, int(os.environ.get("BENCH_PAGE_LOADS", "15")))))
    finally:
        server.stop()


def measure(url: str, loads: int) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.browser.support import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        signing_in = browser.new_context(base_url=url)
        page = signing_in.new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/")
        session = signing_in.storage_state()
        signing_in.close()

        timings, phases, sizes = [], [], {}
        # One warm-up load: the server's first request imports and compiles what later ones reuse.
        for run in range(loads + 1):
            context = browser.new_context(base_url=url, storage_state=session)
            page = context.new_page()
            bodies = {}

            def keep(response, bodies=bodies):
                if response.request.resource_type in ("document", "stylesheet", "script", "image", "font"):
                    try:
                        bodies[response.url] = response.body()
                    except Exception:  # a body the browser already dropped (a redirect)
                        bodies[response.url] = b""

            page.on("response", keep)
            page.goto("/", wait_until="load")
            navigation = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return {start: n.startTime, responseStart: n.responseStart, responseEnd: n.responseEnd,"
                " dom: n.domContentLoadedEventEnd, load: n.loadEventEnd,"
                " resources: performance.getEntriesByType('resource')"
                ".map((r) => [r.name, r.startTime, r.responseEnd])}; }"
            )
            if run:
                timings.append(navigation["load"] - navigation["start"])
                assets_done = max(
                    (end for name, _start, end in navigation["resources"] if "favicon" not in name), default=0
                )
                phases.append((navigation["responseEnd"], assets_done, navigation["dom"]))
                sizes = {
                    address.removeprefix(url): (len(body), len(gzip.compress(body, compresslevel=9)))
                    for address, body in bodies.items()
                }
            context.close()
        browser.close()
    return {"loads_ms": timings, "phases_ms": phases, "assets": sizes}


def report(result: dict) -> bool:
    if "skipped" in result:
        print(f"home page first load: skipped ({result['skipped']})")
        return True
    loads = result["loads_ms"]
    median, worst = statistics.median(loads), max(loads)
    raw = sum(size for size, _ in result["assets"].values()) / 1024
    compressed = sum(size for _, size in result["assets"].values()) / 1024
    print(f"home page first load in Chromium ({len(loads)} cold loads, HTML + assets to the load event):")
    print(f"  median {median:.0f} ms, worst {worst:.0f} ms (target ≤ {TARGET_LOAD_MS:.0f} ms, for the median)")
    document, assets, dom = (statistics.median(phase[index] for phase in result["phases_ms"]) for index in range(3))
    print(f"  medians: document received {document:.0f} ms, assets received {assets:.0f} ms, DOM ready {dom:.0f} ms")
    print(f"  load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    sizes = f"{compressed:.0f} KB gzip-compressed, {raw:.0f} KB raw"
    print(f"  document and assets: {sizes} (target ≤ {TARGET_ASSETS_KB:.0f} KB)")
    for address, (size, packed) in sorted(result["assets"].items(), key=lambda item: -item[1][1]):
        print(f"    {packed / 1024:7.1f} KB  ({size / 1024:6.1f} KB raw)  {address}")
    ok = median <= TARGET_LOAD_MS and compressed <= TARGET_ASSETS_KB
    print("  within the targets" if ok else "  OVER a target")
    return ok


def main(argv: list[str]) -> int:
    if "--child" in argv:
        child()
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as workdir:
        ok = report(
            run_child(
                "bench.pages",
                database_url=sqlite_url(workdir),
                workdir=workdir,
                env={"ALLOWED_HOSTS": "127.0.0.1", "BENCH_PAGES_SCRATCH": workdir},
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
