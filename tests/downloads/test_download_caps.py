"""Download caps and resumed downloads: a Range that skips byte 0 continues this client's recent download only
while it has been handed at most twice the file; anything else takes a unit of the cap; HEAD never does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from downloads.models import CountedDownload
from tests.downloads.conftest import asgi_request, fetch, link_path

# Uniqueness and exact counting are the database's work: these run again on PostgreSQL.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

HERE = ("203.0.113.7", 5555)  # the conftest client's address
ELSEWHERE = ("198.51.100.9", 4444)
CURL = [("User-Agent", "curl/8.5.0")]


def _range(spec: str, headers=CURL) -> list[tuple[str, str]]:
    return [*headers, ("Range", f"bytes={spec}")]


def test_repeated_ranges_past_byte_0_are_refused_once_the_byte_budget_is_spent(make_app, make_link):
    link = make_link(max_downloads=1)  # "hello\n": 6 bytes, a budget of 12
    app = make_app()
    path = link_path(link)
    assert fetch(app, path, headers=_range("0-0")).body == b"h"  # takes the one unit
    assert fetch(app, path, headers=_range("1-")).body == b"ello\n"  # 6 bytes handed out
    assert fetch(app, path, headers=_range("1-")).body == b"ello\n"  # 11: still a continuation
    response = fetch(app, path, headers=_range("1-"))  # 16 > 12: a new download, and none is left
    assert (response.status, response.body) == (410, b"Download limit reached\n")
    link.refresh_from_db()
    assert link.download_count == 1
    assert CountedDownload.objects.get(link=link).bytes_served == 11


def test_a_resume_from_another_address_or_browser_counts_as_a_new_download(make_app, make_link):
    link = make_link("big.bin", max_downloads=2)
    app = make_app()
    path = link_path(link)
    assert fetch(app, path, headers=CURL).status == 200  # 1 of 2
    assert fetch(app, path, headers=_range("1000-"), client=ELSEWHERE).status == 206  # 2 of 2: not the same client
    assert fetch(app, path, headers=_range("1000-", [("User-Agent", "Wget/1.21")])).status == 410
    assert fetch(app, path, headers=_range("2000-"), client=ELSEWHERE).status == 206  # its own continuation
    assert fetch(app, path, headers=_range("2000-")).status == 206  # and the first client's
    link.refresh_from_db()
    assert link.download_count == 2


def test_the_download_that_took_the_last_unit_can_still_be_resumed(make_app, make_link):
    link = make_link("big.bin", max_downloads=1)
    app = make_app()
    path = link_path(link)
    assert fetch(app, path, headers=_range("0-999")).status == 206
    assert fetch(app, path, headers=CURL).status == 410  # a new download: none left
    response = fetch(app, path, headers=_range("1000-"))  # the interrupted one goes on
    assert (response.status, len(response.body)) == (206, 1024 * 1024 - 1000)


def test_a_resume_after_the_window_counts_as_a_new_download(make_app, make_link, settings):
    settings.DOWNLOADS_RESUME_WINDOW = 600
    link = make_link("big.bin", max_downloads=1)
    now = [datetime.now(UTC)]
    app = make_app(clock=lambda: now[0])
    path = link_path(link)
    assert fetch(app, path, headers=_range("0-999")).status == 206
    now[0] += timedelta(seconds=590)
    assert fetch(app, path, headers=_range("1000-1999")).status == 206  # within 10 minutes of the last request
    now[0] += timedelta(seconds=590)
    assert fetch(app, path, headers=_range("2000-2999")).status == 206
    now[0] += timedelta(seconds=601)
    assert fetch(app, path, headers=_range("3000-")).status == 410


def test_head_never_counts(make_app, make_link):
    link = make_link(max_downloads=1)
    app = make_app()
    for _ in range(5):
        assert fetch(app, link_path(link), method="HEAD").status == 200
        assert fetch(app, link_path(link), method="HEAD", headers=_range("1-")).status == 206
    assert fetch(app, link_path(link)).status == 200
    link.refresh_from_db()
    assert link.download_count == 1


def test_under_x_accel_the_rule_is_applied_before_nginx_is_asked(make_app, make_link):
    app = make_app(DOWNLOADS_ACCEL_LOCATION="/_accel/downloads/")
    link = make_link(max_downloads=1)
    path = link_path(link)
    assert "x-accel-redirect" in fetch(app, path, headers=CURL).headers  # 6 bytes handed over
    assert "x-accel-redirect" in fetch(app, path, headers=_range("1-")).headers  # 11
    response = fetch(app, path, headers=_range("1-"))  # 16
    assert (response.status, response.body) == (410, b"Download limit reached\n")
    assert "x-accel-redirect" not in response.headers


def test_uncapped_links_still_count_downloads_from_byte_0_only(make_app, make_link, audit_writer):
    link = make_link()
    app = make_app()
    fetch(app, link_path(link))
    fetch(app, link_path(link), headers=_range("1-"))
    fetch(app, link_path(link), method="HEAD")
    audit_writer.flush()
    link.refresh_from_db()
    assert link.download_count == 1
    assert not CountedDownload.objects.exists()  # no per-download state for links without a cap


def test_forty_parallel_full_gets_on_a_cap_of_3_give_exactly_3_files(make_app, make_link):
    link = make_link("big.bin", max_downloads=3)
    app = make_app()

    async def together():
        return await asyncio.gather(*(asgi_request(app, link_path(link)) for _ in range(40)))

    statuses = sorted(response.status for response in asyncio.run(together()))
    assert statuses == [200] * 3 + [410] * 37
    link.refresh_from_db()
    assert link.download_count == 3


def test_parallel_continuations_cannot_overspend_the_byte_budget(make_app, make_link):
    link = make_link(max_downloads=1)  # 6 bytes, a budget of 12
    app = make_app()
    assert fetch(app, link_path(link), headers=_range("0-0")).status == 206  # 1 byte

    async def together():
        return await asyncio.gather(
            *(asgi_request(app, link_path(link), headers=_range("1-"), client=HERE) for _ in range(20))
        )

    statuses = sorted(response.status for response in asyncio.run(together()))
    assert statuses == [206] * 2 + [410] * 18  # 1 + 5 + 5 = 11 ≤ 12; a third would be 16
    assert CountedDownload.objects.get(link=link).bytes_served == 11


def _accel_app_after_a_one_byte_start(make_app, make_link):
    """A capped link under X-Accel whose one unit was taken by ``bytes=0-0``: only continuations are left."""
    app = make_app(DOWNLOADS_ACCEL_LOCATION="/_accel/downloads/")
    link = make_link("big.bin", max_downloads=1)
    path = link_path(link)
    assert fetch(app, path, headers=_range("0-0")).status == 200  # nginx answers the Range itself
    return app, link, path


def test_under_x_accel_ranges_nginx_would_answer_with_the_whole_file_count_as_a_new_download(
    make_app, make_link, downloads_root
):
    # nginx's range filter sends the whole file (200) when the ranges it is asked for add up to more than the file
    # (it does not merge overlapping ones), when the header does not start with exactly "bytes=", and when
    # If-Range is not one of its own validators. The hub must charge what nginx will send, not what it would
    # have sent itself: before, each of these cost the budget a few bytes and handed out the whole 1 MiB file.
    app, link, path = _accel_app_after_a_one_byte_start(make_app, make_link)
    status = (downloads_root / "big.bin").stat()
    stale_etag = f'"{status.st_mtime_ns:x}-{status.st_size:x}"'  # not the file's ETag (the hub's old format)
    for headers in (
        _range(",".join(["1-100000"] * 16)),  # 16 times 100,000 bytes asked > 1 MiB: nginx ignores the Range
        [*CURL, ("Range", "BYTES = 1-1")],
        [*_range("1-1"), ("If-Range", stale_etag)],
    ):
        response = fetch(app, path, headers=headers)
        assert (response.status, response.body) == (410, b"Download limit reached\n"), headers
    link.refresh_from_db()
    assert link.download_count == 1


def test_under_x_accel_overlapping_ranges_are_charged_as_nginx_sends_them(make_app, make_link):
    app, link, path = _accel_app_after_a_one_byte_start(make_app, make_link)
    # nginx sends each of the 16 ranges (it merges none): 16,000 bytes of the file, not 1,000.
    response = fetch(app, path, headers=_range(",".join(["1-1000"] * 16)))
    assert "x-accel-redirect" in response.headers
    assert CountedDownload.objects.get(link=link).bytes_served == 1 + 16 * 1000


def test_under_x_accel_a_malformed_range_is_the_hubs_416_and_counts_nothing(make_app, make_link):
    # nginx answers these 416 too: before, the hub counted a whole download that nginx then refused.
    app = make_app(DOWNLOADS_ACCEL_LOCATION="/_accel/downloads/")
    link = make_link(max_downloads=1)
    for spec in ("abc", "9-5", "0-1,,4-5", "100-"):
        response = fetch(app, link_path(link), headers=_range(spec))
        assert (response.status, "x-accel-redirect" in response.headers) == (416, False), spec
    link.refresh_from_db()
    assert link.download_count == 0
    assert fetch(app, link_path(link), headers=CURL).status == 200
