"""The X-Accel site the nginx tests share: Debian's nginx with deploy/nginx.conf's ``internal`` location in front of
the lean download app under uvicorn (``nginx_in_front`` in tests/downloads/conftest.py serves it)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from downloads.asgi import DownloadApp, DownloadConfig
from downloads.signing import KeyRing, LegacyConfig
from tests.browser.support import HubServer
from tests.support.services import in_ci
from tests.support.waiting import accepts_connections, wait_until

SECRET = "This is just a long string to set a seed"
LEGACY = LegacyConfig(SECRET, ZoneInfo("UTC"))
ACCEL = "/_accel/downloads/"
CONTENT = bytes(range(256)) * 8192  # 2 MiB

NGINX_CONF = """
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location {accel} {{ internal; alias {root}/; }}
        location / {{ proxy_pass http://{upstream}; proxy_set_header X-Real-IP $remote_addr; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def nginx_accel_site(tmp_path) -> Iterator[tuple[str, list]]:
    """nginx on a free port in front of the download app; yields (its URL, the attempts the app audited)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if shutil.os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        if in_ci():
            pytest.fail("nginx is not installed; CI is set, so this test must run")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    tmp_path.chmod(0o755)
    root = tmp_path / "downloads"
    (root / "dir1").mkdir(parents=True)
    (root / "dir1" / "big.bin").write_bytes(CONTENT)
    (root / "Größe naïve.pdf").write_bytes(b"%PDF-1.4 tiny")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    attempts = []
    app = DownloadApp(
        DownloadConfig(
            root=str(root), keys=KeyRing((("k", b"k" * 32),)), legacy=LEGACY, accel_location=ACCEL.rstrip("/")
        ),
        submit=attempts.append,
    )
    server = HubServer(app)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;" if shutil.os.geteuid() == 0 else "",
            tmp=tmp_path,
            port=port,
            accel=ACCEL,
            root=root,
            upstream=server.url.removeprefix("http://"),
        )
    )
    process = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
    if not wait_until(lambda: process.poll() is not None or accepts_connections(port), timeout=10, interval=0.05) or (
        process.poll() is not None
    ):
        process.kill()
        server.stop()
        pytest.fail(f"nginx did not start: {(tmp_path / 'error.log').read_text()}")
    try:
        yield f"http://127.0.0.1:{port}", attempts
    finally:
        process.terminate()
        process.wait(10)
        server.stop()
