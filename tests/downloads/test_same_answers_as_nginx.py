"""Side by side: a real nginx (Debian's, as production runs it) serving a file, and the hub's download app serving
the same file through a signed link, get the same requests; conditionals and ranges must get the same answers.

Compared: status, Content-Type, Content-Length, Content-Range, ETag, Last-Modified, Accept-Ranges, and the body
with the multipart boundary normalised (both boundaries are 20 digits, so the lengths agree too). The body of a
412 or 416 is each server's own error text (nginx's is an HTML page), so for those only the headers that say
something about the file are compared.

nginx runs with ``if_modified_since before`` (RFC 9110 §13.1.3: not modified when the file is not newer than
the date; nginx's default answers 304 for the exact date only), which is how the hub reads If-Modified-Since.
Under X-Accel-Redirect the hub answers conditional requests itself before nginx sees them, so production agrees
whatever nginx's setting. Skips without nginx; fails when CI is set.
"""

from __future__ import annotations

import http.client
import os
import re
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import pytest

from downloads.asgi import DownloadApp, config_from_settings
from tests.deploy.nginx_site import free_port, nginx_binary, nginx_running
from tests.downloads.conftest import fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)

CONTENT = bytes((n * 7 + n // 251) % 256 for n in range(10_000))
MODIFIED = 1_796_000_000  # the file's mtime, so the table's dates are fixed
ETAG = f'"{MODIFIED:x}-{len(CONTENT):x}"'
LAST_MODIFIED = formatdate(MODIFIED, usegmt=True)
EARLIER = formatdate(MODIFIED - 1, usegmt=True)
LATER = formatdate(MODIFIED + 3600, usegmt=True)
COMPARED = ("content-type", "content-length", "content-range", "etag", "last-modified", "accept-ranges")

NGINX_CONF = """
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {root}; if_modified_since before; }}
    }}
}}
"""

# (method, request headers): at least 20 requests a client may send for a file.
REQUESTS = [
    ("GET", {}),
    ("HEAD", {}),
    # Range
    ("GET", {"Range": "bytes=0-99"}),
    ("GET", {"Range": "bytes=9000-"}),
    ("GET", {"Range": "bytes=-100"}),
    ("GET", {"Range": "bytes=0-0"}),
    ("GET", {"Range": "bytes=9990-20000"}),
    ("GET", {"Range": "bytes=10000-"}),
    ("GET", {"Range": "bytes=-0"}),
    ("HEAD", {"Range": "bytes=0-9"}),
    ("GET", {"Range": "bytes=0-9,20000-30000"}),
    # malformed or not a byte range
    ("GET", {"Range": "bytes=9-5"}),
    ("GET", {"Range": "bytes=abc"}),
    ("GET", {"Range": "bytes=9-5,0-1"}),
    ("GET", {"Range": "bytes=0-1,,5-6"}),
    ("GET", {"Range": "bytes=0-9223372036854775808"}),
    ("GET", {"Range": "BYTES= 0 - 5"}),
    ("GET", {"Range": "bytes = 0-5"}),
    ("GET", {"Range": "items=0-5"}),
    # several ranges: client's order, no merging, the whole file past its size
    ("GET", {"Range": "bytes=0-9,20-29"}),
    ("GET", {"Range": "bytes=500-509,0-4,-3"}),
    ("GET", {"Range": "bytes=0-4,3-9"}),
    ("GET", {"Range": "bytes=0-4,5-9"}),
    ("HEAD", {"Range": "bytes=0-4,100-200"}),
    ("GET", {"Range": "bytes=0-,0-"}),
    ("GET", {"Range": "bytes=0-5999,5000-9999"}),
    # If-None-Match and If-Modified-Since
    ("GET", {"If-None-Match": ETAG}),
    ("HEAD", {"If-None-Match": ETAG}),
    ("GET", {"If-None-Match": "W/" + ETAG}),
    ("GET", {"If-None-Match": f'"a", {ETAG}, "b"'}),
    ("GET", {"If-None-Match": "*"}),
    ("GET", {"If-None-Match": '"other"'}),
    ("GET", {"If-Modified-Since": LAST_MODIFIED}),
    ("GET", {"If-Modified-Since": LATER}),
    ("GET", {"If-Modified-Since": EARLIER}),
    ("GET", {"If-None-Match": '"other"', "If-Modified-Since": LAST_MODIFIED}),
    ("GET", {"If-None-Match": ETAG, "Range": "bytes=0-9"}),
    # If-Match and If-Unmodified-Since
    ("GET", {"If-Match": ETAG}),
    ("GET", {"If-Match": f'"a", {ETAG}'}),
    ("GET", {"If-Match": "*"}),
    ("GET", {"If-Match": '"other"'}),
    ("GET", {"If-Match": "W/" + ETAG}),
    ("GET", {"If-Unmodified-Since": LAST_MODIFIED}),
    ("GET", {"If-Unmodified-Since": EARLIER}),
    ("GET", {"If-Match": '"other"', "If-None-Match": ETAG}),
    ("GET", {"If-Match": ETAG, "Range": "bytes=10-19"}),
    # If-Range
    ("GET", {"Range": "bytes=10-19", "If-Range": ETAG}),
    ("GET", {"Range": "bytes=10-19", "If-Range": LAST_MODIFIED}),
    ("GET", {"Range": "bytes=10-19", "If-Range": '"stale"'}),
    ("GET", {"Range": "bytes=10-19", "If-Range": EARLIER}),
    ("GET", {"Range": "bytes=10-19,30-39", "If-Range": ETAG}),
]


@pytest.fixture(scope="module")
def served_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("same-as-nginx")
    root.chmod(0o755)
    (root / "data.bin").write_bytes(CONTENT)
    os.utime(root / "data.bin", (MODIFIED, MODIFIED))
    return root


@pytest.fixture(scope="module")
def nginx(served_dir, tmp_path_factory):
    binary = nginx_binary()  # skips without nginx, fails under CI
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=served_dir))
    # nginx_running waits for the port it names "https"; this server listens there in plain HTTP.
    with nginx_running({"binary": binary, "conf": conf, "https": port}):
        yield port


@pytest.fixture
def hub(served_dir, downloads_root, settings, customer):
    from downloads.services import link_create

    settings.DOWNLOADS_ROOT = served_dir
    link = link_create(customer=customer, path="data.bin", expires_at=datetime.now(UTC) + timedelta(days=1))
    app = DownloadApp(config_from_settings(), submit=lambda attempt: None)
    return app, link_path(link)


def _nginx_answer(port: int, method: str, headers: dict) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, "/data.bin", headers=headers)
        response = connection.getresponse()
        body = response.read()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, body
    finally:
        connection.close()


def _comparable(status: int, headers: dict, body: bytes) -> dict:
    compared = {name: headers.get(name) for name in COMPARED}
    boundary = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", compared["content-type"] or "")
    if boundary:
        compared["content-type"] = compared["content-type"].replace(boundary[1], "BOUNDARY")
        body = body.replace(boundary[1].encode(), b"BOUNDARY")
    if status in (412, 416):  # each server's own error text
        compared = {name: compared[name] for name in ("content-range", "etag", "last-modified", "accept-ranges")}
        body = b""
    return {"status": status, **compared, "body": body}


@pytest.mark.parametrize(("method", "headers"), REQUESTS, ids=[f"{method} {headers}" for method, headers in REQUESTS])
def test_the_hub_answers_as_nginx_does(nginx, hub, method, headers):
    app, path = hub
    expected = _comparable(*_nginx_answer(nginx, method, headers))
    answer = fetch(app, path, method=method, headers=list(headers.items()))
    assert _comparable(answer.status, answer.headers, answer.body) == expected


def test_the_table_covers_what_the_issue_asks(nginx):
    statuses = {_nginx_answer(nginx, method, headers)[0] for method, headers in REQUESTS}
    assert len(REQUESTS) >= 20
    assert statuses == {200, 206, 304, 412, 416}
