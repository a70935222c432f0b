"""bench/downloads.py's rows measure what they say: the old tool's Lua check answers as the old tool did (its
own example link, the hub's legacy signing), nginx's secure_link row checks its links, the edge row is the shipped
download host with only the bench's paths put in, and wrk's list holds every link the same number of times.

Drives Debian's nginx with the lua module (skips without them; fails under CI, where .ci/run installs them).
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from bench._downloads_links import (
    LEGACY_SECRET,
    SECURE_LINK_SECRET,
    legacy_links,
    secure_link_links,
    write_workload,
)
from bench._downloads_nginx import (
    MODULES,
    Server,
    configuration,
    oldtool_body,
    parse,
    secure_link_body,
    shipped_edge,
    start_nginx,
    static_body,
)
from bench.asgi_servers import free_port, stop
from downloads.signing import legacy_signature
from tests.support.services import in_ci

CONTENT = bytes(range(256)) * 16  # 4 KiB


@pytest.fixture
def bench_nginx(tmp_path):
    """The bench's nginx with the static, secure_link and old-tool rows: {row: base URL}."""
    needed = [MODULES / name for name in ("ndk_http_module.so", "ngx_http_lua_module.so", "ngx_http_js_module.so")]
    if shutil.which("nginx") is None or not all(module.exists() for module in needed):
        if in_ci():
            pytest.fail("nginx with the js and lua modules is not installed; CI is set, so this test must run")
        pytest.skip("nginx with libnginx-mod-http-js and -lua is not installed")
    tmp_path.chmod(0o755)
    root = tmp_path / "downloads"
    (root / "dir1").mkdir(parents=True)
    (root / "dir1" / "example1.txt").write_bytes(CONTENT)
    ports = {name: free_port() for name in ("static", "secure", "oldtool")}
    servers = [
        Server(ports["static"], static_body(root), tmp_path / "static.json"),
        Server(ports["secure"], secure_link_body(root, SECURE_LINK_SECRET), tmp_path / "secure.json"),
        Server(ports["oldtool"], oldtool_body(), tmp_path / "oldtool.json"),
    ]
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    process = start_nginx(
        tmp_path,
        configuration(tmp_path, servers, edge=None, base_dir=root),
        base["static"] + "/a/b/c/dir1/example1.txt",
    )
    yield base
    stop(process)


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def test_the_old_tool_row_serves_a_link_the_hub_signs_in_the_legacy_format(bench_nginx):
    (link,) = legacy_links(count=1, path="dir1/example1.txt")
    assert get(f"{bench_nginx['oldtool']}/{link}") == (200, "application/octet-stream", CONTENT)


def test_the_old_tool_row_refuses_as_the_old_tool_did(bench_nginx):
    base = bench_nginx["oldtool"]
    # The old tool's own example link: authentic (signed with its example secret), long expired.
    assert get(f"{base}/YjZhNDAzZDY0/acme/2015-08-15T20:30/dir1/example1.txt")[::2] == (404, b"Link expired\n")
    signature = legacy_signature(LEGACY_SECRET, "acme", "2099-01-01T00:00", "dir1/example1.txt")
    tampered = f"{base}/{signature}/acme/2099-01-01T00:00/dir1/example2.txt"
    assert get(tampered)[::2] == (404, b"Invalid signature\n")
    missing = legacy_signature(LEGACY_SECRET, "acme", "2099-01-01T00:00", "dir1/nothing.txt")
    assert get(f"{base}/{missing}/acme/2099-01-01T00:00/dir1/nothing.txt")[::2] == (404, b"File NOT found.\n")
    bad_date = legacy_signature(LEGACY_SECRET, "acme", "2099-01-01", "dir1/example1.txt")
    assert get(f"{base}/{bad_date}/acme/2099-01-01/dir1/example1.txt")[::2] == (404, b"Invalid expire date format\n")
    assert get(f"{base}/only/three/parts")[0] == 403


def test_the_secure_link_row_serves_its_links_and_refuses_a_changed_one(bench_nginx):
    (link,) = secure_link_links(count=1, path="dir1/example1.txt")
    assert get(f"{bench_nginx['secure']}/{link}")[::2] == (200, CONTENT)
    assert get(f"{bench_nginx['secure']}/{link.replace('customer0', 'customer1')}")[0] == 403


def test_the_static_row_sends_the_file_a_link_names_without_any_check(bench_nginx):
    assert get(f"{bench_nginx['static']}/forged/anyone/never/dir1/example1.txt")[::2] == (200, CONTENT)


def test_the_edge_row_is_the_shipped_download_host_with_the_bench_paths(tmp_path):
    edge = shipped_edge(
        root=tmp_path / "downloads", markers=tmp_path / "markers", log=tmp_path / "edge.json", hub="127.0.0.1:9"
    )
    shipped = (Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf").read_text()
    for text in (edge.http, edge.server):
        for container_only in ("/srv/hub", "web:8000", "/etc/nginx/njs"):
            assert container_only not in text
    assert f"access_log {tmp_path / 'edge.json'} edge_downloads" in edge.server
    assert f"set $edge_markers {tmp_path / 'markers'}/;" in edge.server
    assert "http://127.0.0.1:9" in edge.server
    assert edge.prefix == "/"
    # Every location of the shipped download host is there, none added.
    host = next(
        server
        for server in next(d for d in parse(shipped) if d.name == "http").block
        if server.name == "server" and any("downloads.*" in d.words for d in server.block)
    )
    shipped_locations = [d.words for d in host.block if d.name == "location"]
    assert [d.words for d in parse(edge.server) if d.name == "location"] == shipped_locations


def test_the_workload_holds_every_link_three_times_in_a_fixed_shuffled_order(tmp_path):
    links = [f"s{number}/c/e/f" for number in range(50)]
    first = write_workload(tmp_path / "a.txt", "/dl/", links).read_text().split()
    again = write_workload(tmp_path / "b.txt", "/dl/", links).read_text().split()
    assert first == again
    assert Counter(first) == {f"/dl/{link}": 3 for link in links}
    assert first != sorted(first)


def test_wrk_walks_the_list_through_the_lua_script(bench_nginx, tmp_path):
    if shutil.which("wrk") is None:
        if in_ci():
            pytest.fail("wrk is not installed; CI is set, so this test must run")
        pytest.skip("wrk is not installed")
    listed = write_workload(tmp_path / "list.txt", "/", ["a/b/c/dir1/example1.txt", "x/y/z/dir1/nothing.txt"])
    script = Path(__file__).resolve().parents[2] / "bench" / "wrk" / "links.lua"
    done = subprocess.run(
        ["wrk", "-t2", "-c2", "-d1s", "-s", str(script), bench_nginx["static"], "--", str(listed), "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    # Half the list names a file that is not there: wrk saw both paths.
    assert "Non-2xx or 3xx responses" in done.stdout
