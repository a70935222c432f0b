"""The file, the requests and the nginx config the side-by-side tests with a real nginx share.

The fixtures that serve them (``served_dir``, ``nginx``) are in tests/downloads/conftest.py.
"""

from __future__ import annotations

import os
import re
from email.utils import formatdate
from pathlib import Path

CONTENT = bytes((n * 7 + n // 251) % 256 for n in range(10_000))
MODIFIED = 1_796_000_000  # the file's mtime, so the table's dates are fixed
ETAG = f'"{MODIFIED:x}-{len(CONTENT):x}"'
LAST_MODIFIED = formatdate(MODIFIED, usegmt=True)
EARLIER = formatdate(MODIFIED - 1, usegmt=True)
LATER = formatdate(MODIFIED + 3600, usegmt=True)
COMPARED = ("content-type", "content-length", "content-range", "etag", "last-modified", "accept-ranges")
SERVED_NAME = "data.bin"

_SCRATCH_CONF = """
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    {http}
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        {locations}
    }}
}}
"""


def write_nginx_conf(tmp: Path, port: int, locations: str, *, http: str = "") -> Path:
    """An nginx.conf in ``tmp`` (its pid, logs and temp folders there too) with one plain-HTTP server on
    ``port`` holding ``locations``; root's nginx runs its workers as root, so they read the tests' folders."""
    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(_SCRATCH_CONF.format(user=user, tmp=tmp, port=port, http=http, locations=locations))
    return conf


def static_locations(root: Path) -> str:
    """The side-by-side tests' nginx: ``root`` as static files, with the hub's If-Modified-Since rule."""
    return f"location / {{ root {root}; if_modified_since before; }}"


STATIC_HTTP = "include /etc/nginx/mime.types;\n    default_type application/octet-stream;"

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


def request_id(method: str, headers: dict) -> str:
    return f"{method} {headers}"


def comparable(status: int, headers: dict, body: bytes) -> dict:
    """What must agree between two servers' answers: the COMPARED headers (lower-case names) and the body, with the
    multipart boundary (each server's own random one) normalised. The body of a 412 or 416 is each server's own
    error text (nginx's is an HTML page), so for those only the headers that say something about the file count."""
    kept = {name: headers.get(name) for name in COMPARED}
    boundary = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", headers.get("content-type") or "")
    if boundary:
        kept["content-type"] = kept["content-type"].replace(boundary[1], "BOUNDARY")
        body = body.replace(boundary[1].encode(), b"BOUNDARY")
    if status in (412, 416):
        kept = {name: kept[name] for name in ("content-range", "etag", "last-modified", "accept-ranges")}
        body = b""
    return {"status": status, **kept, "body": body}
