"""deploy/nginx.conf run by the machine's nginx: its paths moved into a temp dir, the `web` upstream replaced.

Only ports, file locations and the upstream's address are rewritten; every header and location is the
shipped config's. Shared by the nginx tests and the tests that put the real hub behind it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import in_ci
from tests.support.waiting import accepts_connections, wait_until

PROJECT_DIR = Path(__file__).resolve().parents[2]
NGINX_CONF = (PROJECT_DIR / "deploy" / "nginx.conf").read_text()


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        if in_ci():
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed; `apt-get install nginx-light` (.ci/run does) to test deploy/nginx.conf")
    return path


def require_njs(binary: str) -> None:
    """deploy/nginx.conf loads njs (downloads served at the edge): skip without the module, fail under CI (.ci/run
    installs Debian's libnginx-mod-http-js)."""
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stderr
    modules_path, prefix = (re.search(rf"--{name}=(\S+)", built) for name in ("modules-path", "prefix"))
    folder = Path(modules_path[1]) if modules_path else Path(prefix[1] if prefix else "/etc/nginx") / "modules"
    if not (folder / "ngx_http_js_module.so").exists():
        if in_ci():
            pytest.fail(f"nginx's njs module is not in {folder} (.ci/run installs libnginx-mod-http-js)")
        pytest.skip(f"nginx's njs module is not in {folder}: apt-get install libnginx-mod-http-js")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_site(tmp_path: Path, upstream: str) -> dict:
    """The shipped config in ``tmp_path`` proxying to ``upstream`` (``127.0.0.1:<port>``), with a certificate."""
    binary = nginx_binary()
    require_njs(binary)
    tls = tmp_path / "tls"
    subprocess.run(
        [str(PROJECT_DIR / "deploy" / "selfsigned-cert.sh"), "localhost", "127.0.0.1"],
        env={**os.environ, "TLS_DIR": str(tls), "DAYS": "2"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    (tmp_path / "srv" / "static").mkdir(parents=True, exist_ok=True)
    (tmp_path / "srv" / "downloads").mkdir(parents=True, exist_ok=True)
    (tmp_path / "srv" / "edge").mkdir(parents=True, exist_ok=True)  # the hub's edge markers
    (tmp_path / "srv" / "edge-log").mkdir(parents=True, exist_ok=True)  # nginx's log of edge-served downloads
    (tmp_path / "run").mkdir(exist_ok=True)
    http_port, https_port = free_port(), free_port()
    conf = (
        NGINX_CONF.replace("/tmp/nginx", f"{tmp_path}/run/nginx")
        .replace("/etc/nginx/tls/", f"{tls}/")
        .replace("/etc/nginx/njs/", f"{PROJECT_DIR}/deploy/njs/")
        .replace("/srv/hub/", f"{tmp_path}/srv/")
        .replace("access_log /dev/stdout;", f"access_log {tmp_path}/run/access.log;")
        .replace("listen 80 ", f"listen 127.0.0.1:{http_port} ")
        .replace("listen 443 ", f"listen 127.0.0.1:{https_port} ")
        .replace("http://web:8000", f"http://{upstream}")
    )
    if os.geteuid() == 0:
        # Started as root, workers would run as `nobody`, who cannot enter pytest's private temp dirs.
        conf = "user root;\n" + conf
    conf_path = tmp_path / "nginx.conf"
    conf_path.write_text(conf)
    return {"binary": binary, "conf": conf_path, "http": http_port, "https": https_port, "dir": tmp_path}


@contextlib.contextmanager
def nginx_running(site: dict) -> Iterator[dict]:
    process = subprocess.Popen(
        [site["binary"], "-e", "stderr", "-c", str(site["conf"]), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def listening() -> bool:
            assert process.poll() is None, process.stdout.read().decode()
            return accepts_connections(site["https"])

        assert wait_until(listening, timeout=10, interval=0.05), "nginx did not listen within 10 s"
        yield site
    finally:
        process.terminate()
        process.wait(timeout=10)


def https(
    site: dict, method: str, path: str, headers: dict | None = None, body: bytes | None = None
) -> http.client.HTTPResponse:
    """One request to nginx's TLS server as ``localhost``; the answer's body is read into ``.body``."""
    context = ssl.create_default_context(cafile=str(site["dir"] / "tls" / "fullchain.pem"))
    connection = http.client.HTTPSConnection("localhost", site["https"], context=context, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response
