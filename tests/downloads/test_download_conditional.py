"""Conditional requests through the download app: 304 and 412 as nginx answers them, decided before a download
is counted, with the hub sending the bytes itself and under X-Accel-Redirect."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from downloads.models import DownloadEvent
from tests.downloads.conftest import fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)


def _validators(downloads_root, path="dir1/example1.txt") -> tuple[str, str]:
    status = (downloads_root / path).stat()
    return f'"{int(status.st_mtime):x}-{status.st_size:x}"', formatdate(status.st_mtime, usegmt=True)


def test_the_file_carries_nginxs_etag_and_last_modified(make_app, make_link, downloads_root):
    response = fetch(make_app(), link_path(make_link()))
    assert (response.headers["etag"], response.headers["last-modified"]) == _validators(downloads_root)
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_matching_if_none_match_or_if_modified_since_is_304_with_the_validators_and_no_body(
    make_app, make_link, downloads_root, method
):
    etag, last_modified = _validators(downloads_root)
    app, path = make_app(), link_path(make_link())
    for headers in (
        [("If-None-Match", etag)],
        [("If-None-Match", f'"x", W/{etag}')],
        [("If-None-Match", "*")],
        [("If-Modified-Since", last_modified)],
        [("If-None-Match", etag), ("Range", "bytes=0-1")],  # before Range
    ):
        response = fetch(app, path, method=method, headers=headers)
        assert (response.status, response.body) == (304, b""), headers
        assert (response.headers["etag"], response.headers["last-modified"]) == (etag, last_modified)
        assert not {"content-type", "content-length", "accept-ranges"} & set(response.headers)
    assert fetch(app, path, headers=[("If-None-Match", '"changed"')]).status == 200


def test_a_failing_if_match_or_if_unmodified_since_is_412(make_app, make_link, audit_writer):
    app, path = make_app(), link_path(make_link())
    for headers in (
        [("If-Match", '"changed"')],
        [("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:01 GMT")],
    ):
        response = fetch(app, path, headers=headers)
        assert (response.status, response.body) == (412, b"Precondition failed\n")
    audit_writer.flush()
    assert (
        list(DownloadEvent.objects.values_list("status", "outcome", "bytes_sent"))
        == [(412, "precondition_failed", 0)] * 2
    )


@pytest.mark.parametrize("accel", ["", "/_accel/downloads/"])
def test_neither_304_nor_412_uses_up_a_capped_link(make_app, make_link, downloads_root, accel, audit_writer):
    etag, last_modified = _validators(downloads_root)
    app = make_app(DOWNLOADS_ACCEL_LOCATION=accel)
    link = make_link(max_downloads=1)
    path = link_path(link)
    for headers in (
        [("If-None-Match", etag)],
        [("If-Modified-Since", last_modified)],
        [("If-Match", '"changed"')],
        [("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:01 GMT")],
        [("If-Unmodified-Since", "not a date")] if accel else [("If-Match", "W/" + etag)],  # nginx: 412
    ):
        response = fetch(app, path, headers=headers)
        assert response.status in (304, 412), headers
        assert "x-accel-redirect" not in response.headers
    link.refresh_from_db()
    assert link.download_count == 0
    # The one download is still there, and it is the last.
    assert fetch(app, path).status == 200
    assert fetch(app, path).status == 410
    audit_writer.flush()
    link.refresh_from_db()
    assert link.download_count == 1


def test_under_x_accel_a_304_is_the_hubs_own_answer(make_app, make_link, downloads_root):
    etag, last_modified = _validators(downloads_root)
    app = make_app(DOWNLOADS_ACCEL_LOCATION="/_accel/downloads/")
    response = fetch(app, link_path(make_link()), headers=[("If-None-Match", etag)])
    assert (response.status, response.headers["etag"], response.headers["last-modified"]) == (304, etag, last_modified)
    assert "x-accel-redirect" not in response.headers


def test_if_range_takes_nginxs_etag_or_the_exact_last_modified_date(make_app, make_link, downloads_root):
    etag, last_modified = _validators(downloads_root)
    app, path = make_app(), link_path(make_link())
    for if_range, status in ((etag, 206), (last_modified, 206), ("W/" + etag, 200), ('"stale"', 200)):
        response = fetch(app, path, headers=[("Range", "bytes=1-2"), ("If-Range", if_range)])
        assert response.status == status, if_range
