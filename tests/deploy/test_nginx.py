"""deploy/nginx.conf, run by the machine's nginx with its paths moved into a temp dir.

The config is the one the compose file mounts; only ports, file locations and the upstream's address are
rewritten. A small HTTP server stands in for the hub's `web` service.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests.support.services import in_ci

PROJECT_DIR = Path(__file__).resolve().parents[2]
NGINX_CONF = (PROJECT_DIR / "deploy" / "nginx.conf").read_text()
COMPOSE = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
ACCEL_LOCATION = COMPOSE["services"]["web"]["environment"]["DOWNLOADS_ACCEL_LOCATION"]
FILE_BYTES = bytes(range(256)) * 64  # 16 KiB whose every offset is recognisable


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        if in_ci():
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed; `apt-get install nginx-light` (.ci/run does) to test deploy/nginx.conf")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_config_names_the_tls_files_the_static_volume_and_an_internal_downloads_location():
    assert "ssl_certificate /etc/nginx/tls/fullchain.pem;" in NGINX_CONF
    assert "ssl_certificate_key /etc/nginx/tls/privkey.pem;" in NGINX_CONF
    assert "location /static/ {\n            alias /srv/hub/static/;" in NGINX_CONF
    accel_block = NGINX_CONF.split(f"location {ACCEL_LOCATION} {{", 1)[1].split("}", 1)[0]
    assert "internal;" in accel_block
    assert "alias /srv/hub/downloads/;" in accel_block
    compose_tls = [v for v in COMPOSE["services"]["nginx"]["volumes"] if v.endswith(":/etc/nginx/tls:ro")]
    assert compose_tls, "compose mounts the operator's certificate where the config looks"


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Stands in for `web`: hands downloads to nginx by X-Accel-Redirect and echoes what it was sent."""

    download_host_requests: list = []

    def do_GET(self):
        if self.headers.get("Host", "").startswith("downloads."):
            # On the download host a link sits at the root: /<signature>/<customer>/<expiry>/<path>.
            FakeHub.download_host_requests.append((self.path, dict(self.headers)))
            parts = self.path.split("/", 4)
            self.send_response(200 if len(parts) == 5 else 403)
            if len(parts) == 5:
                self.send_header("X-Accel-Redirect", ACCEL_LOCATION + parts[4])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/dl/"):
            self.send_response(200)
            self.send_header("X-Accel-Redirect", ACCEL_LOCATION + self.path.removeprefix("/dl/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def fake_hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, fake_hub):
    """The config rewritten into a temp dir, a certificate from deploy/selfsigned-cert.sh, a static file, a download."""
    binary = nginx_binary()
    tmp_path = tmp_path_factory.mktemp("nginx")
    tls = tmp_path / "tls"
    subprocess.run(
        [str(PROJECT_DIR / "deploy" / "selfsigned-cert.sh"), "localhost", "127.0.0.1"],
        env={**os.environ, "TLS_DIR": str(tls), "DAYS": "2"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    (tmp_path / "srv" / "static" / "hub").mkdir(parents=True)
    (tmp_path / "srv" / "static" / "hub" / "app.css").write_text("body { color: #123; }\n")
    (tmp_path / "srv" / "downloads" / "customer").mkdir(parents=True)
    (tmp_path / "srv" / "downloads" / "customer" / "firmware.bin").write_bytes(FILE_BYTES)
    (tmp_path / "srv" / "downloads" / "customer" / "manual v2 (ü).pdf").write_bytes(b"%PDF-1.4 manual")
    (tmp_path / "run").mkdir()
    http_port, https_port = free_port(), free_port()
    conf = (
        NGINX_CONF.replace("/tmp/nginx", f"{tmp_path}/run/nginx")
        .replace("/etc/nginx/tls/", f"{tls}/")
        .replace("/srv/hub/", f"{tmp_path}/srv/")
        .replace("access_log /dev/stdout;", f"access_log {tmp_path}/run/access.log;")
        .replace("listen 80 ", f"listen 127.0.0.1:{http_port} ")
        .replace("listen 443 ", f"listen 127.0.0.1:{https_port} ")
        .replace("http://web:8000", f"http://127.0.0.1:{fake_hub}")
    )
    if os.geteuid() == 0:
        # Started as root, workers would run as `nobody`, who cannot enter pytest's private temp dirs.
        conf = "user root;\n" + conf
    conf_path = tmp_path / "nginx.conf"
    conf_path.write_text(conf)
    return {"binary": binary, "conf": conf_path, "http": http_port, "https": https_port, "dir": tmp_path}


def test_nginx_accepts_the_config(site):
    result = subprocess.run(
        [site["binary"], "-t", "-e", "stderr", "-c", str(site["conf"])], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture(scope="module")
def running_nginx(site):
    process = subprocess.Popen(
        [site["binary"], "-e", "stderr", "-c", str(site["conf"]), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", site["https"]), timeout=0.5):
                break
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
        yield site
    finally:
        process.terminate()
        process.wait(timeout=10)


def https(site, method: str, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    context = ssl.create_default_context(cafile=str(site["dir"] / "tls" / "fullchain.pem"))
    connection = http.client.HTTPSConnection("localhost", site["https"], context=context, timeout=10)
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def test_plain_http_redirects_to_https_and_answers_the_container_health_check(running_nginx):
    connection = http.client.HTTPConnection("127.0.0.1", running_nginx["http"], timeout=10)
    connection.request("GET", "/admin/", headers={"Host": "hub.example"})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == "https://hub.example/admin/"
    response.read()
    connection.request("GET", "/nginx-healthz")
    assert connection.getresponse().status == 200


def test_tls_with_the_self_signed_fallback_serves_static_files_without_the_hub(running_nginx):
    response = https(running_nginx, "GET", "/static/hub/app.css")
    assert response.status == 200
    assert response.body == b"body { color: #123; }\n"
    assert "text/css" in response.getheader("Content-Type")


def test_requests_and_websocket_upgrades_reach_the_hub_with_forwarded_headers(running_nginx):
    response = https(
        running_nginx, "GET", "/ws/push", headers={"Upgrade": "websocket", "Connection": "Upgrade", "Host": "localhost"}
    )
    seen = json.loads(response.body)
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert seen["path"] == "/ws/push"
    assert headers["upgrade"] == "websocket"
    assert headers["connection"] == "upgrade"
    assert headers["x-forwarded-proto"] == "https", "Django's SECURE_PROXY_SSL_HEADER relies on it"
    assert headers["host"] == "localhost"
    assert headers["x-forwarded-for"] == "127.0.0.1"


def test_x_accel_redirect_sends_the_file_from_the_downloads_volume_with_range(running_nginx):
    whole = https(running_nginx, "GET", "/dl/customer/firmware.bin")
    assert whole.status == 200
    assert whole.body == FILE_BYTES
    part = https(running_nginx, "GET", "/dl/customer/firmware.bin", headers={"Range": "bytes=1000-1099"})
    assert part.status == 206
    assert part.body == FILE_BYTES[1000:1100]
    assert part.getheader("Content-Range") == f"bytes 1000-1099/{len(FILE_BYTES)}"


def test_x_accel_redirect_finds_a_file_whose_name_the_hub_percent_encoded(running_nginx):
    # downloads/asgi.py quotes the relative path into the X-Accel-Redirect header; nginx must decode it.
    response = https(running_nginx, "GET", "/dl/customer/" + urllib.parse.quote("manual v2 (ü).pdf"))
    assert response.status == 200
    assert response.body == b"%PDF-1.4 manual"


def test_the_internal_downloads_location_is_not_reachable_from_outside(running_nginx):
    response = https(running_nginx, "GET", ACCEL_LOCATION + "customer/firmware.bin")
    assert response.status == 404
    assert FILE_BYTES[:64] not in response.body


LEGACY_SHAPED_LINK = "/YjZhNDAzZDY0/acme/2030-01-01T00:00/customer/firmware.bin"


def test_a_link_at_the_root_of_the_download_host_reaches_the_hub_and_nginx_sends_the_file(running_nginx):
    host = {"Host": "downloads.example.org"}
    FakeHub.download_host_requests.clear()
    whole = https(running_nginx, "GET", LEGACY_SHAPED_LINK, headers=host)
    assert whole.status == 200
    assert whole.body == FILE_BYTES
    path, headers = FakeHub.download_host_requests[-1]
    headers = {name.lower(): value for name, value in headers.items()}
    assert path == LEGACY_SHAPED_LINK  # at the root, unchanged: the hub matches it by DOWNLOADS_HOST
    assert headers["host"] == "downloads.example.org"
    assert headers["x-real-ip"] == "127.0.0.1"
    part = https(running_nginx, "GET", LEGACY_SHAPED_LINK, headers={**host, "Range": "bytes=10-19"})
    assert part.status == 206
    assert part.body == FILE_BYTES[10:20]


def test_the_download_host_serves_only_links(running_nginx):
    host = {"Host": "downloads.example.org"}
    internal = https(running_nginx, "GET", ACCEL_LOCATION + "customer/firmware.bin", headers=host)
    assert internal.status == 404
    assert FILE_BYTES[:64] not in internal.body
    # Static files belong to the hub's own host; on the download host the path goes to the hub as a (bad) link.
    static = https(running_nginx, "GET", "/static/hub/app.css", headers=host)
    assert static.status == 403
    assert b"color: #123" not in static.body


def test_the_hubs_own_host_does_not_treat_root_paths_as_links(running_nginx):
    response = https(running_nginx, "GET", LEGACY_SHAPED_LINK, headers={"Host": "localhost"})
    assert response.status == 200
    assert json.loads(response.body)["path"] == LEGACY_SHAPED_LINK  # the hub itself, not nginx's file
