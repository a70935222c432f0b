"""The X-Accel site the nginx tests share: Debian's nginx with deploy/nginx.conf's ``internal`` location in front of
the lean download app under uvicorn (``nginx_in_front`` in tests/downloads/conftest.py serves it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from downloads.asgi import DownloadApp, DownloadConfig
from downloads.signing import KeyRing, LegacyConfig
from tests.browser.support import HubServer
from tests.deploy.nginx_site import free_port, nginx_binary, nginx_running
from tests.downloads.nginx_support import write_nginx_conf

SECRET = "This is just a long string to set a seed"
LEGACY = LegacyConfig(SECRET, ZoneInfo("UTC"))
ACCEL = "/_accel/downloads/"
CONTENT = bytes(range(256)) * 8192  # 2 MiB


@contextlib.contextmanager
def nginx_accel_site(tmp_path) -> Iterator[tuple[str, list]]:
    """nginx on a free port in front of the download app; yields (its URL, the attempts the app audited)."""
    binary = nginx_binary()  # skips without nginx, fails under CI
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
    locations = (
        f"location {ACCEL} {{ internal; alias {root}/; }}\n"
        f"        location / {{ proxy_pass {server.url}; proxy_set_header X-Real-IP $remote_addr; }}"
    )
    conf = write_nginx_conf(tmp_path, port, locations)
    try:
        # nginx_running waits for the port it names "https"; this server listens there in plain HTTP.
        with nginx_running({"binary": binary, "conf": conf, "https": port}):
            yield f"http://127.0.0.1:{port}", attempts
    finally:
        server.stop()
