"""deploy/nginx.conf, run by the machine's nginx with its paths moved into a temp dir.

The config is the one the compose file mounts; only ports, file locations and the upstream's address are
rewritten. A small HTTP server stands in for the hub's `web` service.
"""

from __future__ import annotations

import http.client
import http.server
import json
import subprocess
import threading
import urllib.parse

import pytest
import yaml

from tests.deploy.nginx_site import NGINX_CONF, PROJECT_DIR, https, make_site, nginx_running

COMPOSE = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
ACCEL_LOCATION = COMPOSE["services"]["web"]["environment"]["DOWNLOADS_ACCEL_LOCATION"]
FILE_BYTES = bytes(range(256)) * 64  # 16 KiB whose every offset is recognisable


def test_the_config_names_the_tls_files_the_static_volume_and_an_internal_downloads_location():
    assert "ssl_certificate /etc/nginx/tls/fullchain.pem;" in NGINX_CONF
    assert "ssl_certificate_key /etc/nginx/tls/privkey.pem;" in NGINX_CONF
    assert "location /static/ {\n            alias /srv/hub/static/;" in NGINX_CONF
    accel_block = NGINX_CONF.split(f"location {ACCEL_LOCATION} {{", 1)[1].split("}", 1)[0]
    assert "internal;" in accel_block
    assert "alias /srv/hub/downloads/;" in accel_block
    compose_tls = [v for v in COMPOSE["services"]["nginx"]["volumes"] if v.endswith(":/etc/nginx/tls:ro")]
    assert compose_tls, "compose mounts the operator's certificate where the config looks"


def test_every_proxied_location_sets_the_client_address_rather_than_appending_to_the_clients_own():
    proxied = [block for block in NGINX_CONF.split("location ")[1:] if "proxy_pass" in block.split("}")[0]]
    # The hub's own host (everything, the admin's uploads, downloads not served at the edge) and the download host's.
    assert len(proxied) == 4
    for block in proxied:
        block = block.split("}")[0]
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block
        assert "proxy_set_header X-Real-IP $remote_addr;" in block
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in block
    assert "$proxy_add_x_forwarded_for" not in NGINX_CONF


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
    """The shipped config in a temp dir in front of the fake hub, with a static file and two downloads."""
    tmp_path = tmp_path_factory.mktemp("nginx")
    (tmp_path / "srv" / "static" / "hub").mkdir(parents=True)
    (tmp_path / "srv" / "static" / "hub" / "app.css").write_text("body { color: #123; }\n")
    (tmp_path / "srv" / "downloads" / "customer").mkdir(parents=True)
    (tmp_path / "srv" / "downloads" / "customer" / "firmware.bin").write_bytes(FILE_BYTES)
    (tmp_path / "srv" / "downloads" / "customer" / "manual v2 (ü).pdf").write_bytes(b"%PDF-1.4 manual")
    return make_site(tmp_path, f"127.0.0.1:{fake_hub}")


def test_nginx_accepts_the_config(site):
    result = subprocess.run(
        [site["binary"], "-t", "-e", "stderr", "-c", str(site["conf"])], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture(scope="module")
def running_nginx(site):
    with nginx_running(site) as running:
        yield running


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
    invented = {"X-Forwarded-For": "203.0.113.66", "X-Real-IP": "203.0.113.67", "X-Forwarded-Proto": "http"}
    response = https(
        running_nginx,
        "GET",
        "/ws/push",
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Host": "localhost", **invented},
    )
    seen = json.loads(response.body)
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert seen["path"] == "/ws/push"
    assert headers["upgrade"] == "websocket"
    assert headers["connection"] == "upgrade"
    assert headers["x-forwarded-proto"] == "https", "Django's SECURE_PROXY_SSL_HEADER relies on it"
    assert headers["host"] == "localhost"
    # Replaced, not appended to: the address nginx saw is the only one the hub gets.
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"


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
    whole = https(running_nginx, "GET", LEGACY_SHAPED_LINK, headers={**host, "X-Forwarded-For": "203.0.113.66"})
    assert whole.status == 200
    assert whole.body == FILE_BYTES
    path, headers = FakeHub.download_host_requests[-1]
    headers = {name.lower(): value for name, value in headers.items()}
    assert path == LEGACY_SHAPED_LINK  # at the root, unchanged: the hub matches it by DOWNLOADS_HOST
    assert headers["host"] == "downloads.example.org"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-for"] == "127.0.0.1"
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
