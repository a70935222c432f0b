"""X-Accel-Redirect through a real nginx: the hub verifies, nginx sends the bytes and does Range.

Uses Debian's nginx (skips without it; fails under CI) with the same ``internal`` location as
deploy/nginx.conf, in front of the lean download app under uvicorn. Legacy links are used so the app needs
no database here; the hub's own links take the same path once verified.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from downloads.signing import sign_legacy_link
from tests.downloads.accel_support import ACCEL, CONTENT, LEGACY, SECRET


def get(url: str, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def link(path: str) -> str:
    parts = sign_legacy_link(legacy=LEGACY, customer="acme", expiry="2099-01-01T00:00", path=path)
    return "/" + parts.as_path()


def test_nginx_sends_the_whole_file_with_the_hubs_headers(nginx_in_front):
    base, attempts = nginx_in_front
    status, headers, body = get(base + link("dir1/big.bin"))
    assert status == 200
    assert body == CONTENT
    assert headers["Content-Length"] == str(len(CONTENT))
    assert headers["Content-Disposition"] == 'attachment; filename="big.bin"'
    assert "X-Accel-Redirect" not in headers
    assert headers.get_all("Accept-Ranges") == ["bytes"]  # nginx's own, not doubled by the hub's
    assert (attempts[-1].status, attempts[-1].accel, attempts[-1].bytes_sent) == (200, True, len(CONTENT))


def test_nginx_answers_range_requests(nginx_in_front):
    base, _attempts = nginx_in_front
    status, headers, body = get(base + link("dir1/big.bin"), {"Range": "bytes=1000-1999"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(CONTENT)}"
    assert body == CONTENT[1000:2000]


def test_nginx_answers_several_ranges_as_multipart_and_the_audit_records_what_it_was_asked(nginx_in_front):
    base, attempts = nginx_in_front
    status, headers, body = get(base + link("dir1/big.bin"), {"Range": "bytes=0-9,1000-1009"})
    assert status == 206
    assert headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert f"Content-Range: bytes 0-9/{len(CONTENT)}".encode() in body
    assert f"Content-Range: bytes 1000-1009/{len(CONTENT)}".encode() in body
    assert CONTENT[1000:1010] in body
    assert (attempts[-1].range, attempts[-1].bytes_sent) == (f"0-9,1000-1009/{len(CONTENT)}", 20)


def test_a_non_ascii_file_name_reaches_nginx_intact(nginx_in_front):
    base, _attempts = nginx_in_front
    status, headers, body = get(base + link("Größe naïve.pdf"))
    assert (status, body) == (200, b"%PDF-1.4 tiny")
    assert "filename*=UTF-8''Gr%C3%B6%C3%9Fe%20na%C3%AFve.pdf" in headers["Content-Disposition"]


def test_the_internal_location_is_not_reachable_from_outside(nginx_in_front):
    base, _attempts = nginx_in_front
    status, _headers, body = get(base + ACCEL + "dir1/big.bin")
    # An `internal` location answers 404 to any request from outside: only the hub's X-Accel-Redirect reaches it.
    assert status == 404
    assert CONTENT[:256] not in body


def test_a_signed_link_through_a_symlink_out_of_the_root_is_refused(nginx_in_front):
    base, _attempts = nginx_in_front
    status, _headers, body = get(base + link("escape.txt"))
    assert (status, body) == (404, b"File not found\n")


def test_a_capped_link_through_nginx_hands_out_no_more_than_its_byte_budget(nginx_in_front, settings, tmp_path):
    # nginx does Range its own way: overlapping ranges adding up to more than the file get the whole file (200),
    # and so does an If-Range that is not the file's ETag. Each must be charged as nginx answers it, so that after a
    # one-byte start the continuations of a cap of 1 end at twice the file's size.
    from downloads.services import customer_create, link_create

    base, _attempts = nginx_in_front
    settings.DOWNLOADS_ROOT = tmp_path / "downloads"
    settings.DOWNLOADS_LEGACY_SECRET = SECRET
    settings.DOWNLOADS_LEGACY_TZ = ZoneInfo("UTC")
    record = link_create(
        customer=customer_create(slug="acme"),
        path="dir1/big.bin",
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
        legacy=True,
        max_downloads=1,
    )
    url = base + "/" + "/".join((record.signature, "acme", record.expiry_text, record.path))
    status, _headers, body = get(url, {"Range": "bytes=0-0"})
    assert (status, body) == (206, CONTENT[:1])
    received = len(body)
    overlapping = ",".join(["1-200000"] * 16)  # 3.2 MB asked of a 2 MiB file
    stat = (tmp_path / "downloads" / "dir1" / "big.bin").stat()
    stale_etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'  # not the file's ETag (the hub's old format)
    for headers in [{"Range": f"bytes={overlapping}"}, {"Range": "bytes=1-1", "If-Range": stale_etag}] * 5:
        status, _headers, body = get(url, headers)
        if status in (200, 206):
            received += len(body)
    assert received <= 2 * len(CONTENT)
    status, _headers, body = get(url, {"Range": f"bytes={overlapping}"})
    assert (status, body) == (410, b"Download limit reached\n")


def test_a_client_revalidating_through_nginx_gets_304_from_the_hub_and_nginx_sends_nothing(nginx_in_front):
    base, attempts = nginx_in_front
    url = base + link("dir1/big.bin")
    _status, headers, _body = get(url)
    status, headers_304, body = get(url, {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    assert headers_304["ETag"] == headers["ETag"]  # nginx's ETag and the hub's are one
    assert (attempts[-1].status, attempts[-1].accel, attempts[-1].bytes_sent) == (304, False, 0)
    status, _headers, _body = get(url, {"If-Modified-Since": headers["Last-Modified"], "Range": "bytes=0-9"})
    assert status == 304
    status, _headers, _body = get(url, {"If-Match": '"changed"'})
    assert (status, attempts[-1].status, attempts[-1].accel) == (412, 412, False)
