"""Links served at the edge: the machine's nginx with the shipped deploy/nginx.conf and deploy/njs/edge.js in front of
the hub's download app, the hub writing its edge markers into the folder nginx reads.

Only ports and paths are changed (tests/deploy/nginx_site.py); the hub runs in this process under uvicorn, with the
test database, X-Accel on as in production and its audit collected in a list: a request the hub never saw leaves
no attempt there. What nginx served by itself is read back from its edge log, one JSON object per line.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connections

from downloads import edge as edge_markers
from downloads.asgi import DownloadApp, config_from_settings
from downloads.signing import LegacyConfig, LinkParts, sign_legacy_link
from tests.browser.support import HubServer
from tests.deploy.nginx_site import https, make_site, nginx_running
from tests.downloads.conftest import KEYS_SETTING, POST_SECRET
from tests.support.waiting import wait_until

# Also in the PostgreSQL pass: the cap of a link fetched in parallel through nginx is decided there by the database.
pytestmark = pytest.mark.postgres

CONTENT = bytes((n * 13 + n // 256) % 256 for n in range(64 * 1024))
EDGE_LOG_KEYS = {"t", "id", "ip", "m", "uri", "s", "b", "range", "ua", "link"}
DOWNLOAD_HOST = "downloads.example.org"


class _Switch:
    """The ASGI app nginx proxies to: each test plugs in a download app built from its own settings."""

    app = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def edge_site(tmp_path_factory):
    """The shipped nginx config (downloads volume, edge markers, edge log in a temp dir) proxying to a hub."""
    switch = _Switch()
    server = HubServer(switch)
    home = tmp_path_factory.mktemp("edge")
    home.chmod(0o755)
    site = make_site(home, server.url.removeprefix("http://"))
    root = home / "srv" / "downloads"
    (root / "dir 1").mkdir()
    (root / "dir 1" / "report.bin").write_bytes(CONTENT)
    (root / "naïve.txt").write_bytes(b"hello\n")
    try:
        with nginx_running(site):
            site.update(switch=switch, root=root, markers=home / "srv" / "edge", log=home / "srv" / "edge-log")
            yield site
    finally:
        server.stop()


@pytest.fixture
def edge(edge_site, settings, transactional_db):
    """Per test: the hub's settings pointing at the site's folders, a fresh download app and audit, no markers."""
    from downloads.selectors import link_records

    settings.DOWNLOADS_ROOT = edge_site["root"]
    settings.DOWNLOADS_EDGE_DIR = str(edge_site["markers"]) + "/"
    settings.DOWNLOADS_ACCEL_LOCATION = "/_accel/downloads/"
    settings.DOWNLOADS_KEYS = KEYS_SETTING
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    settings.DOWNLOADS_LEGACY_TZ = ZoneInfo("Europe/Madrid")
    settings.DOWNLOADS_PREFIX = "/dl/"
    settings.DOWNLOADS_HOST = DOWNLOAD_HOST
    settings.DOWNLOADS_LINK_CACHE_SECONDS = 1
    for marker in edge_site["markers"].iterdir():
        marker.unlink()
    link_records.clear()
    site = dict(edge_site, attempts=[])
    site["rebuild"] = lambda: _plug(site)
    _plug(site)
    log = edge_site["log"] / "edge-downloads.log"
    site["log_start"] = log.stat().st_size if log.exists() else 0
    yield site
    link_records.clear()


class _ClosingExecutor(ThreadPoolExecutor):
    """The hub's worker threads, each closing its database connection after every task: none is left open when the
    test database is dropped."""

    def submit(self, fn, /, *args, **kwargs):
        def run():
            try:
                return fn(*args, **kwargs)
            finally:
                connections.close_all()

        return super().submit(run)


def _plug(site: dict) -> None:
    executor = _ClosingExecutor(max_workers=16)
    site["switch"].app = DownloadApp(config_from_settings(), submit=site["attempts"].append, executor=executor)


def edge_lines(site: dict, expected: int = 0) -> list[dict]:
    """The edge log's lines written since the test began, once there are ``expected`` of them (nginx writes a line
    just after the answer's last byte, so a client can be faster than the log)."""
    log = site["log"] / "edge-downloads.log"

    def read() -> list[dict]:
        if not log.exists():
            return []
        with log.open("rb") as handle:
            handle.seek(site["log_start"])
            return [json.loads(line) for line in handle.read().splitlines()]

    if expected:
        # A request's lines are written together in its log phase: once the expected ones are there, any
        # duplicate of theirs would be there too.
        wait_until(lambda: len(read()) >= expected, timeout=5)
    else:
        # None expected: give a line a moment to show (a fetch's line follows its last byte by microseconds).
        wait_until(read, timeout=0.3)
    return read()


def make_link(path="dir 1/report.bin", *, expires_at=None, **kwargs):
    from downloads.models import Customer
    from downloads.services import customer_create, link_create

    customer = Customer.objects.filter(slug="acme").first() or customer_create(slug="acme")
    expires_at = expires_at or datetime.now(UTC) + timedelta(days=7)
    return link_create(customer=customer, path=path, expires_at=expires_at, **kwargs)


def url_of(link, prefix="/dl/") -> str:
    return prefix + LinkParts(link.signature, link.customer.slug, link.expiry_text, link.path).as_path()


def get(site, path, headers=None, method="GET"):
    response = https(site, method, path, headers)
    return response.status, response, response.body


def test_an_active_link_is_served_by_nginx_alone_and_logged_for_the_audit(edge):
    link = make_link()
    assert (edge["markers"] / link.signature).is_file()
    status, response, body = get(edge, url_of(link), {"User-Agent": "edge-test/1"})
    assert (status, body) == (200, CONTENT)
    assert response.getheader("Content-Disposition") == 'attachment; filename="report.bin"'
    assert response.getheader("ETag")
    assert response.getheader("Accept-Ranges") == "bytes"
    status, response, body = get(edge, url_of(link), {"Range": "bytes=100-199"})
    assert (status, body) == (206, CONTENT[100:200])
    assert response.getheader("Content-Range") == f"bytes 100-199/{len(CONTENT)}"
    assert edge["attempts"] == [], "the hub never saw these requests"
    whole, part = edge_lines(edge, 2)
    assert set(whole) == set(part) == EDGE_LOG_KEYS
    assert all(isinstance(value, str) for value in whole.values())
    assert (whole["link"], whole["s"], whole["b"], whole["m"], whole["ua"]) == (
        str(link.pk),
        "200",
        str(len(CONTENT)),
        "GET",
        "edge-test/1",
    )
    assert whole["uri"] == url_of(link)
    assert len(whole["id"]) == 32
    assert whole["id"] != part["id"]
    assert (part["s"], part["b"], part["range"]) == ("206", "100", "bytes=100-199")


def test_head_and_revalidation_are_answered_at_the_edge_as_the_hub_answers_them(edge):
    link = make_link()
    status, response, body = get(edge, url_of(link), method="HEAD")
    assert (status, body, response.getheader("Content-Length")) == (200, b"", str(len(CONTENT)))
    etag, modified = response.getheader("ETag"), response.getheader("Last-Modified")
    assert get(edge, url_of(link), {"If-None-Match": etag})[::2] == (304, b"")
    # Any date not older than the file, as the hub answers (nginx's default wants the exact date).
    assert get(edge, url_of(link), {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})[0] == 304
    assert get(edge, url_of(link), {"If-Modified-Since": modified})[0] == 304
    assert edge["attempts"] == []
    lines = edge_lines(edge, 4)
    assert [(line["m"], line["s"], line["b"]) for line in lines] == [
        ("HEAD", "200", "0"),
        ("GET", "304", "0"),
        ("GET", "304", "0"),
        ("GET", "304", "0"),
    ]


def test_the_download_host_serves_links_at_its_root_at_the_edge(edge):
    link = make_link("naïve.txt")
    status, response, body = get(edge, url_of(link, "/"), {"Host": DOWNLOAD_HOST})
    assert (status, body) == (200, b"hello\n")
    assert "filename*=UTF-8''na%C3%AFve.txt" in response.getheader("Content-Disposition")
    assert edge["attempts"] == []
    assert [line["link"] for line in edge_lines(edge, 1)] == [str(link.pk)]


def test_a_revoked_link_is_refused_by_the_hub_within_a_second(edge):
    from downloads.services import link_revoke

    link = make_link()
    assert get(edge, url_of(link))[0] == 200
    revoked_at = time.monotonic()
    link_revoke(link=link)
    status, _response, body = get(edge, url_of(link))
    assert time.monotonic() - revoked_at < 1.0
    assert (status, body) == (410, b"Link revoked\n")
    assert [attempt.outcome for attempt in edge["attempts"]] == ["revoked"]
    assert len(edge_lines(edge, 1)) == 1, "only the fetch before the revocation was served at the edge"


def test_a_deleted_link_is_refused(edge):
    from downloads.services import links_delete

    link = make_link()
    assert get(edge, url_of(link))[0] == 200
    links_delete(links=[link])
    assert not (edge["markers"] / link.signature).exists()
    assert get(edge, url_of(link))[::2] == (410, b"Link revoked\n")
    assert [attempt.outcome for attempt in edge["attempts"]] == ["revoked"]


def test_a_capped_link_goes_to_the_hub_and_forty_parallel_fetches_get_exactly_its_cap(edge):
    link = make_link(max_downloads=3)
    assert not (edge["markers"] / link.signature).exists(), "every fetch of a capped link must be counted"
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: get(edge, url_of(link)), range(40)))
    statuses = sorted(status for status, _response, _body in answers)
    assert statuses == [200] * 3 + [410] * 37
    assert all(body == CONTENT for status, _response, body in answers if status == 200)
    link.refresh_from_db()
    assert link.download_count == 3
    assert edge_lines(edge) == []


def test_links_signed_with_a_rotated_out_key_keep_working_at_the_edge_until_the_key_is_dropped(edge, settings):
    from downloads.keys import key_ring

    old_key = KEYS_SETTING.split(",")[0]  # k2
    settings.DOWNLOADS_KEYS = old_key
    link = make_link()
    assert link.key_id == "k2"
    settings.DOWNLOADS_KEYS = "k3:" + "bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleQ==," + old_key
    assert key_ring().active_id == "k3"
    edge["rebuild"]()
    assert edge_markers.edge_sync() == (0, 0), "the marker stays: k2 still verifies"
    assert get(edge, url_of(link))[::2] == (200, CONTENT)
    new_link = make_link()
    assert new_link.key_id == "k3"
    assert get(edge, url_of(new_link))[::2] == (200, CONTENT)
    assert edge["attempts"] == []
    settings.DOWNLOADS_KEYS = "k3:" + "bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleQ=="
    edge["rebuild"]()
    assert edge_markers.edge_sync() == (0, 1), "k2 dropped: its link is no longer authentic, at the edge neither"
    assert get(edge, url_of(link))[::2] == (404, b"Not found\n")


def _one_character_changed(signature: str) -> str:
    # Always a different character (overwriting the end with fixed ones gave the same signature once in 256 runs).
    at = len(signature) - 5
    return signature[:at] + ("B" if signature[at] != "B" else "C") + signature[at + 1 :]


CHANGES = ["forged", "other path", "other customer", "other expiry", "truncated", "marker lines in the path"]


@pytest.mark.parametrize("change", CHANGES)
def test_a_link_not_exactly_as_issued_gets_the_hubs_one_generic_answer(edge, change):
    link = make_link()
    (edge["root"] / "other.bin").write_bytes(b"other")
    # Whatever the root holds, only a marker's file is sent at the edge (the check once named a fixed
    # ".edge-none" for "no", and such a file would have been sent for every unmarked link).
    (edge["root"] / ".edge-none").write_bytes(b"planted")
    parts = LinkParts(link.signature, "acme", link.expiry_text, link.path)
    altered = {
        "forged": LinkParts(_one_character_changed(link.signature), parts.customer, parts.expiry, parts.path),
        "other path": LinkParts(parts.signature, parts.customer, parts.expiry, "other.bin"),
        "other customer": LinkParts(parts.signature, "acmf", parts.expiry, parts.path),
        "other expiry": LinkParts(parts.signature, parts.customer, "2099-01-01T00:00:00Z", parts.path),
        "truncated": LinkParts(parts.signature[:-1], parts.customer, parts.expiry, parts.path),
        # The marker's next lines appended to the path: still not the URL the marker binds.
        "marker lines in the path": LinkParts(
            parts.signature, parts.customer, parts.expiry, f"{parts.path}\n{int(link.expires_at.timestamp())}"
        ),
    }[change]
    path = "/dl/" + altered.as_path()
    status, _response, body = get(edge, path)
    assert (status, body) == (404, b"Not found\n")
    assert edge_lines(edge) == []
    assert [attempt.outcome for attempt in edge["attempts"]] == ["invalid"]


def test_an_expired_link_is_answered_by_the_hub_even_with_its_marker_still_there(edge):
    link = make_link(expires_at=datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2))
    assert get(edge, url_of(link))[0] == 200
    wait_until(lambda: time.time() > link.expires_at.timestamp() + 0.05, timeout=5, interval=0.05)
    assert (edge["markers"] / link.signature).exists(), "nginx checks the expiry itself"
    assert get(edge, url_of(link))[::2] == (410, b"Link expired\n")
    assert [attempt.outcome for attempt in edge["attempts"]] == ["expired"]
    assert len(edge_lines(edge, 1)) == 1
    assert edge_markers.edge_sync() == (0, 1), "edge_sync clears expired markers"


def test_legacy_links_are_served_at_the_edge_when_recorded_and_by_the_hub_when_not(edge):
    link = make_link(legacy=True)
    assert link.format == "legacy"
    status, _response, body = get(edge, url_of(link))
    assert (status, body) == (200, CONTENT)
    assert edge["attempts"] == []
    assert [line["link"] for line in edge_lines(edge, 1)] == [str(link.pk)]
    legacy = LegacyConfig(POST_SECRET, ZoneInfo("Europe/Madrid"))
    unrecorded = sign_legacy_link(legacy=legacy, customer="oldcustomer", expiry="2099-01-01T00:00", path="naïve.txt")
    status, _response, body = get(edge, "/" + unrecorded.as_path(), {"Host": DOWNLOAD_HOST})
    assert (status, body) == (200, b"hello\n")
    assert [(attempt.status, attempt.accel) for attempt in edge["attempts"]] == [(200, True)]
    assert len(edge_lines(edge, 1)) == 1, "the hub's X-Accel answer is not written to the edge log"


def test_a_missing_file_or_a_symlink_put_in_its_place_goes_to_the_hub(edge, tmp_path):
    (edge["root"] / "gone.bin").write_bytes(b"soon gone")
    (edge["root"] / "swapped.bin").write_bytes(b"soon a symlink")
    gone, swapped = make_link("gone.bin"), make_link("swapped.bin")
    (edge["root"] / "gone.bin").unlink()
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the root\n")
    (edge["root"] / "swapped.bin").unlink()
    (edge["root"] / "swapped.bin").symlink_to(outside)
    assert get(edge, url_of(gone))[::2] == (404, b"File not found\n")
    assert get(edge, url_of(swapped))[::2] == (404, b"File not found\n")
    assert [attempt.outcome for attempt in edge["attempts"]] == ["missing", "missing"]
    assert edge_lines(edge) == []


def test_edge_sync_rebuilds_the_markers_and_removes_stale_ones(edge):
    from downloads.models import DownloadLink

    active, capped = make_link(), make_link(max_downloads=2)
    revoked = make_link()
    DownloadLink.objects.filter(pk=revoked.pk).update(revoked_at=datetime.now(UTC))  # its marker's removal "lost"
    (edge["markers"] / active.signature).unlink()
    (edge["markers"] / "k2.stale123.xxxxxxxxxxxxxxxxxxxxxx").write_text("{}")
    assert edge_markers.edge_sync() == (1, 2)
    assert sorted(os.listdir(edge["markers"])) == [active.signature]
    marker = (edge["markers"] / active.signature).read_text()
    assert marker == (
        f"acme/{active.expiry_text}/dir 1/report.bin\n{int(active.expires_at.timestamp())}\n{active.pk}\n"
        'dir 1/report.bin\nattachment; filename="report.bin"\n'
    )
    assert capped.max_downloads == 2


def test_a_marker_is_replaced_atomically_so_nginx_never_reads_half_of_one(edge):
    link = make_link()
    stop = threading.Event()
    answers = []

    def fetch_until_stopped():
        while not stop.is_set():
            answers.append(get(edge, url_of(link))[0])

    reader = threading.Thread(target=fetch_until_stopped)
    reader.start()
    try:
        for _ in range(200):
            edge_markers.link_publish(link)
    finally:
        stop.set()
        reader.join()
    assert answers
    assert set(answers) == {200}
    assert edge["attempts"] == [], "every fetch found a whole marker"
    assert [name for name in os.listdir(edge["markers"]) if name.startswith(".")] == []


def test_without_an_edge_folder_every_download_goes_to_the_hub(edge, settings):
    settings.DOWNLOADS_EDGE_DIR = ""
    link = make_link()
    assert list(Path(edge["markers"]).iterdir()) == []
    assert get(edge, url_of(link))[::2] == (200, CONTENT)
    assert [(attempt.status, attempt.accel) for attempt in edge["attempts"]] == [(200, True)]
    assert edge_lines(edge) == []


# The same link written other ways: nginx may serve a spelling at the edge only where the hub would serve it too.
SPELLINGS = {
    "as issued": lambda url: url,
    "escaped letters": lambda url: url.replace("/acme/", "/%61cme/"),
    "escaped slash": lambda url: url.replace("dir%201/", "dir%201%2F"),
    "lower-case escapes": lambda url: url.replace(":", "%3a"),
    "query string": lambda url: url + "?utm=x",
    "double slash": lambda url: url.replace("dir%201/", "dir%201//"),
    "dot segment": lambda url: url.replace("/acme/", "/./acme/"),
    "not UTF-8": lambda url: url.replace("report", "rep%FFort"),
    "escaped signature dot": lambda url: url.replace(".", "%2E", 1),
}


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_edge_serves_a_spelling_of_a_link_only_where_the_hub_would(edge, spelling):
    link = make_link()
    url = SPELLINGS[spelling](url_of(link))
    at_edge = get(edge, url)
    served_at_edge = bool(edge_lines(edge))
    (edge["markers"] / link.signature).unlink()
    by_hub = get(edge, url)
    assert at_edge[::2] == by_hub[::2]
    assert served_at_edge == (spelling not in {"double slash", "dot segment", "not UTF-8"})
