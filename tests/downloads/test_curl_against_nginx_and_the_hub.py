"""curl, the standard client, against a real nginx and the real hub (``manage.py runhub`` over a socket), both
serving the same file: every request of the side-by-side table must get the same answer as curl reports it.

test_same_answers_as_nginx.py calls the hub's download app in-process; here the hub is a process behind a socket
reached through a link ``create_secure_link`` printed, so uvicorn's framing (HEAD, 304, Content-Length) is part
of what is compared. Compared: status (curl's ``%{http_code}``), Content-Type, Content-Length, Content-Range,
ETag, Last-Modified, Accept-Ranges from curl's ``-D`` header file, and the body curl wrote (the multipart boundary
normalised; a 412 or 416 body is each server's own error text, so not compared). Skips without curl or nginx;
fails when CI is set.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.downloads.nginx_support import REQUESTS, SERVED_NAME, comparable, request_id
from tests.support.runhub import embedded_environment, free_port, manage, running_hub
from tests.support.services import in_ci

pytestmark = pytest.mark.slow  # the hub's start-up (migrate, create_secure_link, runhub) takes several seconds


def curl_binary() -> str:
    path = shutil.which("curl") or ("/usr/bin/curl" if Path("/usr/bin/curl").exists() else None)
    if path is None:
        if in_ci():
            pytest.fail("curl is not installed (.ci/run installs it)")
        pytest.skip("curl is not installed; `apt-get install curl` to compare the hub and nginx through it")
    return path


def curl(url: str, method: str, headers: dict, workdir: Path) -> tuple[int, dict, bytes]:
    """``curl -sS -D <headers> -o <body>`` (``-I`` for HEAD): the status, headers and body as curl reports them."""
    workdir.mkdir()
    header_file, body_file = workdir / "headers", workdir / "body"
    command = [curl_binary(), "-sS", "-D", str(header_file), "-o", str(body_file), "-w", "%{http_code}"]
    command += ["-I"] if method == "HEAD" else ["-X", method]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    completed = subprocess.run([*command, url], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, f"curl failed ({completed.returncode}): {completed.stderr}"
    # The last header block is the answer's (curl writes any 1xx block before it).
    block = header_file.read_bytes().decode("latin-1").strip().split("\r\n\r\n")[-1]
    answer_headers = {}
    for line in block.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    body = body_file.read_bytes() if body_file.exists() else b""  # curl makes no file for an empty body
    if method == "HEAD":  # -I writes the headers into the output too; what follows them is the body
        body = body.removeprefix(header_file.read_bytes())
    return int(completed.stdout), answer_headers, body


def _manage(environ: dict, *args: str) -> str:
    finished = manage(environ, *args)
    assert finished.returncode == 0, f"manage.py {' '.join(args)} failed:\n{finished.stdout}{finished.stderr}"
    return finished.stdout


@pytest.fixture(scope="module")
def hub_url(served_dir, tmp_path_factory):
    """The URL of a link to the served file, answered by ``manage.py runhub`` whose DOWNLOADS_ROOT is served_dir."""
    port = free_port()
    environ = embedded_environment(
        tmp_path_factory.mktemp("hub"),
        port=port,
        DOWNLOADS_ROOT=str(served_dir),
        SECRET_KEY="curl-against-nginx-secret-key-0123456789abcdef0123",
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
    )
    _manage(environ, "migrate", "--noinput", "-v", "0")
    link = _manage(environ, "create_secure_link", "--create-customer", "acme", "2099-01-01T00:00:00Z", SERVED_NAME)
    with running_hub(environ, port) as hub:
        yield hub.base + urlsplit(link.strip()).path


@pytest.fixture(scope="module")
def nginx_url(nginx):
    return f"http://127.0.0.1:{nginx}/{SERVED_NAME}"


@pytest.mark.parametrize(("method", "headers"), REQUESTS, ids=[request_id(*row) for row in REQUESTS])
def test_curl_gets_the_same_answer_from_the_hub_as_from_nginx(nginx_url, hub_url, tmp_path, method, headers):
    from_nginx = comparable(*curl(nginx_url, method, headers, tmp_path / "nginx"))
    from_hub = comparable(*curl(hub_url, method, headers, tmp_path / "hub"))
    assert from_hub == from_nginx


def test_the_table_has_what_the_issue_asks_for_as_curl_sees_it(nginx_url, tmp_path):
    answers = [curl(nginx_url, method, headers, tmp_path / str(n)) for n, (method, headers) in enumerate(REQUESTS)]
    statuses = {status for status, _, _ in answers}
    assert statuses == {200, 206, 304, 412, 416}
    assert any(h.get("content-type", "").startswith("multipart/byteranges") for _, h, _ in answers)
    assert any(status == 206 and "content-range" in h for status, h, _ in answers)
    assert {method for method, _ in REQUESTS} == {"GET", "HEAD"}
