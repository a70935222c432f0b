"""The lean download app, driven the way uvicorn drives it: every row of the answer table, Range, hostile input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError

from downloads.models import DownloadEvent, DownloadLink
from downloads.signing import LinkParts, sign_legacy_link, sign_link
from hub.timefmt import format_utc
from tests.downloads.conftest import KEYS, POST_SECRET, asgi_request, fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)

BIG = bytes(range(256)) * 4096


# --- the answer table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dl/", "/dl/abc", "/dl/a/b", "/dl/a/b/", "/dl/a//c/d", "/dl//b/c/d"])
def test_a_path_under_the_prefix_without_the_four_part_shape_is_forbidden(make_app, path):
    response = fetch(make_app(), path)
    assert response.status == 403


def test_a_valid_link_serves_the_file_with_its_name_length_type_and_ranges(make_app, make_link):
    link = make_link()
    response = fetch(make_app(), link_path(link))
    assert response.status == 200
    assert response.body == b"hello\n"
    assert response.headers["content-length"] == "6"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-disposition"] == 'attachment; filename="example1.txt"'
    assert response.headers["accept-ranges"] == "bytes"


def test_a_non_ascii_file_name_is_sent_the_rfc_5987_way(make_app, make_link):
    link = make_link("Größe naïve.pdf")
    response = fetch(make_app(), link_path(link))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Gr__e na_ve.pdf\"; filename*=UTF-8''Gr%C3%B6%C3%9Fe%20na%C3%AFve.pdf"
    )


def test_every_kind_of_inauthentic_link_gets_the_same_404_body(make_app, make_link, customer):
    from downloads.services import customer_create

    customer_create(slug="other")
    link = make_link()
    good = LinkParts(link.signature, "acme", link.expiry_text, link.path)
    key_id, nonce, mac = good.signature.split(".")
    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    variants = [
        LinkParts(f"{key_id}.{nonce}.{mac[:-1]}", good.customer, good.expiry, good.path),  # truncated
        LinkParts(f"{key_id}.{nonce}.{mac}A", good.customer, good.expiry, good.path),  # padded
        LinkParts(f"{key_id}.{nonce}.{'A' * 22}", good.customer, good.expiry, good.path),  # forged
        LinkParts(f"k9.{nonce}.{mac}", good.customer, good.expiry, good.path),  # unknown key
        LinkParts(f"{key_id}.{'A' * 8}.{mac}", good.customer, good.expiry, good.path),  # another nonce
        LinkParts(f"{key_id}.{mac}", good.customer, good.expiry, good.path),  # nonce dropped
        LinkParts(f"{key_id}.{nonce}x.{mac}", good.customer, good.expiry, good.path),  # malformed nonce
        LinkParts(good.signature, "other", good.expiry, good.path),  # replayed for another customer
        LinkParts(good.signature, good.customer, later, good.path),  # later expiry
        LinkParts(good.signature, good.customer, good.expiry, "big.bin"),  # another file
        LinkParts(good.signature, good.customer, "2015-13-45T99:99", good.path),  # impossible date
        LinkParts("YjZhNDAzZDY0", "acme", "2015-08-15T20:30", "dir1/example1.txt"),  # legacy, not configured
        LinkParts("%%%", good.customer, good.expiry, good.path),  # malformed
    ]
    app = make_app()
    bodies = set()
    for parts in variants:
        response = fetch(app, "/dl/" + "/".join((parts.signature, parts.customer, parts.expiry, parts.path)))
        assert response.status == 404, parts
        bodies.add(response.body)
    assert bodies == {b"Not found\n"}


def test_an_authentic_expired_link_says_link_expired(make_app, make_link):
    link = make_link(days=1)
    app = make_app(clock=lambda: datetime.now(UTC) + timedelta(days=2))
    response = fetch(app, link_path(link))
    assert (response.status, response.body) == (410, b"Link expired\n")


def test_a_revoked_link_says_so(make_app, make_link):
    from downloads.services import link_revoke

    link = make_link()
    app = make_app()
    assert (fetch(app, link_path(link))).status == 200
    link_revoke(link=link)
    response = fetch(app, link_path(link))
    assert (response.status, response.body) == (410, b"Link revoked\n")


def test_a_revocation_made_by_another_process_is_seen_within_the_cache_time(make_app, make_link, monkeypatch):
    from downloads.selectors import link_records

    now = [1000.0]
    monkeypatch.setattr(link_records, "clock", lambda: now[0])
    monkeypatch.setattr(link_records, "ttl", 1.0)
    link = make_link()
    app = make_app()
    assert fetch(app, link_path(link)).status == 200
    # Another web process revokes it: this one's cache is not told.
    DownloadLink.objects.filter(pk=link.pk).update(revoked_at=datetime.now(UTC))
    now[0] += 0.5
    assert fetch(app, link_path(link)).status == 200
    now[0] += 0.6
    assert fetch(app, link_path(link)).status == 410


def test_a_deleted_link_counts_as_revoked(make_app, make_link):
    link = make_link()
    path = link_path(link)
    link.delete()
    response = fetch(make_app(), path)
    assert (response.status, response.body) == (410, b"Link revoked\n")


@pytest.mark.postgres
def test_a_used_up_link_says_so_and_the_cap_counts_downloads_not_requests(make_app, make_link):
    link = make_link("big.bin", max_downloads=2)
    app = make_app()
    path = link_path(link)
    assert (fetch(app, path, method="HEAD")).status == 200  # never counts
    assert (fetch(app, path, headers=[("Range", "bytes=0-99")])).status == 206  # counts: includes byte 0
    assert (fetch(app, path, headers=[("Range", "bytes=100-")])).status == 206  # its continuation
    assert (fetch(app, path)).status == 200  # counts
    link.refresh_from_db()
    assert link.download_count == 2
    response = fetch(app, path)
    assert (response.status, response.body) == (410, b"Download limit reached\n")
    # A resumed range from someone else is a new download, and none is left.
    other = fetch(app, path, headers=[("Range", "bytes=1000-")], client=("198.51.100.9", 4444))
    assert (other.status, other.body) == (410, b"Download limit reached\n")


@pytest.mark.postgres
def test_two_concurrent_fetches_of_the_last_download_give_exactly_one_file(make_app, make_link):
    import asyncio

    link = make_link(max_downloads=1)
    app = make_app()

    async def together():
        return await asyncio.gather(*(asgi_request(app, link_path(link)) for _ in range(8)))

    statuses = sorted(response.status for response in asyncio.run(together()))
    assert statuses == [200] + [410] * 7


def test_an_authentic_link_to_a_missing_file_says_file_not_found(make_app, make_link, downloads_root):
    link = make_link()
    (downloads_root / "dir1" / "example1.txt").unlink()
    response = fetch(make_app(), link_path(link))
    assert (response.status, response.body) == (404, b"File not found\n")


def test_other_methods_are_not_allowed(make_app, make_link):
    response = fetch(make_app(), link_path(make_link()), method="POST")
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"


# --- Range and HEAD -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=0-9", 206, "bytes 0-9/1048576", BIG[0:10]),
        ("bytes=1048570-", 206, "bytes 1048570-1048575/1048576", BIG[1048570:]),
        ("bytes=-6", 206, "bytes 1048570-1048575/1048576", BIG[-6:]),
        ("bytes=1048000-9223372036854775807", 206, "bytes 1048000-1048575/1048576", BIG[1048000:]),
        ("bytes=1048000-9223372036854775808", 416, "bytes */1048576", b"Range not satisfiable\n"),  # past off_t
        ("bytes=0-,0-", 200, None, BIG),  # adding up to more than the file: all of it once, as nginx 1.22
        ("bytes=0-600000,500000-", 200, None, BIG),
        ("bytes=1048576-", 416, "bytes */1048576", b"Range not satisfiable\n"),
        ("bytes=99999999999999999999999-", 416, "bytes */1048576", b"Range not satisfiable\n"),
        ("bytes=-0", 416, "bytes */1048576", b"Range not satisfiable\n"),
        ("bytes=9-5", 416, "bytes */1048576", b"Range not satisfiable\n"),  # malformed: 416, as nginx
        ("bytes=abc", 416, "bytes */1048576", b"Range not satisfiable\n"),
        ("bytes=9-5,0-1", 206, "bytes 0-1/1048576", BIG[0:2]),  # a backwards range is dropped
        ("items=0-5", 200, None, BIG),  # not "bytes=": ignored
        ("bytes = 0-5", 200, None, BIG),
        ("BYTES= 0 - 5 ", 206, "bytes 0-5/1048576", BIG[0:6]),
        ("bytes=" + ",".join(["0-1"] * 200), 200, None, BIG),  # too many ranges: ignored
        ("bytes=" + ",".join(f"{n * 10}-{n * 10}" for n in range(17)), 200, None, BIG),  # > 16 ranges: ignored
        ("bytes=0-" + "9" * 5000, 200, None, BIG),  # an over-long header: ignored
        ("bytes=0-" + "9" * 500, 416, "bytes */1048576", b"Range not satisfiable\n"),  # past off_t, as nginx
    ],
)
def test_range_requests(make_app, make_link, header, status, content_range, body):
    response = fetch(make_app(), link_path(make_link("big.bin")), headers=[("Range", header)])
    assert response.status == status
    assert response.headers.get("content-range") == content_range
    assert response.body == body
    assert int(response.headers["content-length"]) == len(body)


def multipart_parts(response) -> list[tuple[str, bytes]]:
    """(Content-Range, bytes) of each part of a multipart/byteranges answer, checking its framing."""
    media_type, _, boundary = response.headers["content-type"].partition("; boundary=")
    assert media_type == "multipart/byteranges"
    assert boundary
    delimiter = b"\r\n--" + boundary.encode()
    body = b"\r\n" + response.body
    assert body.endswith(delimiter + b"--\r\n")
    parts = []
    for chunk in body[: -len(delimiter + b"--\r\n")].split(delimiter)[1:]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().strip().split("\r\n"))
        assert fields["Content-Type"] == "application/octet-stream"
        parts.append((fields["Content-Range"], data))
    return parts


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-1,5-6", [(0, 1), (5, 6)]),
        ("bytes=500-509,0-4,-3", [(500, 509), (0, 4), (len(BIG) - 3, len(BIG) - 1)]),  # in the client's order
        ("bytes=0-4,3-9,100-104,105-110", [(0, 4), (3, 9), (100, 104), (105, 110)]),  # none merged, as nginx
        ("bytes=0-9,2000000-3000000", None),  # one part is beyond the file: the others only (a plain 206)
        ("bytes=" + ",".join(f"{n * 10}-{n * 10}" for n in range(16)), [(n * 10, n * 10) for n in range(16)]),
    ],
)
def test_several_ranges_are_one_multipart_byteranges_answer(make_app, make_link, header, expected):
    response = fetch(make_app(), link_path(make_link("big.bin")), headers=[("Range", header)])
    assert response.status == 206
    assert int(response.headers["content-length"]) == len(response.body)
    if expected is None:
        assert (response.headers["content-range"], response.body) == (f"bytes 0-9/{len(BIG)}", BIG[:10])
        return
    assert "content-range" not in response.headers
    assert "accept-ranges" not in response.headers  # nginx says it on a 200 only
    assert multipart_parts(response) == [(f"bytes {a}-{b}/{len(BIG)}", BIG[a : b + 1]) for a, b in expected]


def test_a_multipart_answer_of_a_big_file_is_streamed_and_audited(make_app, make_link, audit_writer):
    link = make_link("big.bin")
    ranges = [(0, 299_999), (500_000, 999_999)]
    header = "bytes=" + ",".join(f"{a}-{b}" for a, b in ranges)
    response = fetch(make_app(), link_path(link), headers=[("Range", header)])
    assert response.status == 206
    assert response.chunks >= 4  # not read whole
    assert multipart_parts(response) == [(f"bytes {a}-{b}/{len(BIG)}", BIG[a : b + 1]) for a, b in ranges]
    head = fetch(make_app(), link_path(link), method="HEAD", headers=[("Range", header)])
    assert (head.status, head.body) == (206, b"")
    assert head.headers["content-length"] == response.headers["content-length"]
    audit_writer.flush()
    get, _ = DownloadEvent.objects.order_by("id")
    assert (get.range, get.bytes_sent) == ("0-299999,500000-999999/1048576", 800_000)
    link.refresh_from_db()
    assert link.download_count == 1  # its first part starts at byte 0


def test_a_big_file_is_streamed_in_chunks(make_app, make_link):
    response = fetch(make_app(), link_path(make_link("big.bin")))
    assert response.body == BIG
    assert response.chunks >= 4  # 1 MiB in 256 KiB chunks, never read whole


def test_head_sends_the_headers_without_the_body(make_app, make_link):
    response = fetch(make_app(), link_path(make_link("big.bin")), method="HEAD")
    assert response.status == 200
    assert response.headers["content-length"] == str(len(BIG))
    assert response.body == b""


def test_if_range_with_a_stale_validator_sends_the_whole_file(make_app, make_link):
    app = make_app()
    path = link_path(make_link("big.bin"))
    etag = (fetch(app, path, method="HEAD")).headers["etag"]
    assert (fetch(app, path, headers=[("Range", "bytes=5-"), ("If-Range", etag)])).status == 206
    response = fetch(app, path, headers=[("Range", "bytes=5-"), ("If-Range", '"stale"')])
    assert (response.status, len(response.body)) == (200, len(BIG))


def test_an_empty_file_is_served_empty(make_app, make_link):
    response = fetch(make_app(), link_path(make_link("empty.txt")))
    assert (response.status, response.body, response.headers["content-length"]) == (200, b"", "0")


# --- legacy links and the downloads host ----------------------------------------------------------------

LEGACY_PATH = "/YjZhNDAzZDY0/acme/2015-08-15T20:30/dir1/example1.txt"
BEFORE_EXPIRY = datetime(2015, 8, 12, 18, 27, 14, tzinfo=UTC)  # "Wed Aug 12 20:27:14 CEST 2015" on the old server
AFTER_EXPIRY = datetime(2015, 8, 15, 18, 31, 40, tzinfo=UTC)


def test_the_posts_old_link_works_unchanged_on_the_downloads_host(make_app, downloads_root):
    from downloads.asgi import downloads_router

    app = make_app(clock=lambda: BEFORE_EXPIRY, DOWNLOADS_LEGACY_SECRET=POST_SECRET, DOWNLOADS_HOST="downloads.local")
    router = downloads_router(fallback=None, app=app)
    response = fetch(router, LEGACY_PATH, headers=[("Host", "downloads.local:55080")])
    assert (response.status, response.body) == (200, b"hello\n")
    app_later = make_app(clock=lambda: AFTER_EXPIRY)
    response = fetch(downloads_router(None, app_later), LEGACY_PATH, headers=[("Host", "downloads.local")])
    assert (response.status, response.body) == (410, b"Link expired\n")
    # Anything on that host without the link shape is forbidden, as the old server did.
    response = fetch(router, "/admin/", headers=[("Host", "downloads.local")])
    assert response.status == 403


def test_the_old_link_also_works_under_the_prefix(make_app):
    app = make_app(clock=lambda: BEFORE_EXPIRY, DOWNLOADS_LEGACY_SECRET=POST_SECRET)
    response = fetch(app, "/dl" + LEGACY_PATH)
    assert (response.status, response.body) == (200, b"hello\n")


def test_legacy_links_are_refused_without_the_legacy_secret(make_app):
    response = fetch(make_app(clock=lambda: BEFORE_EXPIRY), "/dl" + LEGACY_PATH)
    assert (response.status, response.body) == (404, b"Not found\n")


def test_other_hosts_and_paths_go_to_django():
    from downloads.asgi import DownloadApp, DownloadConfig, downloads_router

    reached = []

    async def django(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    router = downloads_router(django, DownloadApp(DownloadConfig(root="/nonexistent", host="downloads.local")))
    fetch(router, "/admin/", headers=[("Host", "hub.local")])
    fetch(router, "/dlx/a/b/c/d", headers=[("Host", "hub.local")])
    assert reached == ["/admin/", "/dlx/a/b/c/d"]


def test_the_hub_application_sends_download_paths_to_the_lean_app_and_the_rest_to_django(
    make_link, settings, monkeypatch
):
    from downloads import audit
    from hub import asgi

    # The default writer starts lazily on the first attempt; this one is stopped (and flushed) with the test.
    writer = audit.AuditWriter()
    monkeypatch.setattr(audit, "writer", writer)

    application = asgi.build_application(run_embedded=False)
    link = make_link()
    response = fetch(application.app, link_path(link), headers=[("Host", "127.0.0.1")])
    assert (response.status, response.body) == (200, b"hello\n")
    # Not through Django's request cycle: none of its middleware's headers are there.
    assert "x-frame-options" not in response.headers
    assert "cross-origin-opener-policy" not in response.headers
    assert "vary" not in response.headers
    django_answer = fetch(application.app, "/admin/login/", headers=[("Host", "127.0.0.1")])
    assert django_answer.headers["x-frame-options"] == "DENY"  # what Django's cycle would have added
    response = fetch(application.app, "/dl/nope", headers=[("Host", "127.0.0.1")])
    assert response.status == 403
    assert writer.alive
    writer.stop()
    assert list(DownloadEvent.objects.values_list("status", flat=True).order_by("id")) == [200, 403]


# --- X-Accel-Redirect -----------------------------------------------------------------------------------


def test_with_an_accel_location_nginx_is_asked_to_send_the_file(make_app, make_link, audit_writer):
    app = make_app(DOWNLOADS_ACCEL_LOCATION="/_protected_downloads/")
    link = make_link("Größe naïve.pdf")
    response = fetch(app, link_path(link), headers=[("Range", "bytes=2-5")])
    assert response.status == 200
    assert response.headers["x-accel-redirect"] == "/_protected_downloads/Gr%C3%B6%C3%9Fe%20na%C3%AFve.pdf"
    assert response.body == b""
    assert response.headers["content-length"] == "0"  # nginx writes the file's own; 0 lets it reuse the connection
    assert response.headers["content-disposition"].startswith("attachment;")
    audit_writer.flush()
    event = DownloadEvent.objects.get()
    assert (event.accel, event.range, event.bytes_sent) == (True, "2-5/13", 4)


# --- the audit ------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_every_attempt_is_audited_in_a_batch_with_its_events(make_app, make_link, audit_writer):
    from messaging.models import OutboxEvent

    link = make_link("big.bin")
    app = make_app()
    headers = [("User-Agent", "curl/8.5"), ("Range", "bytes=10-19")]
    fetch(app, link_path(link), headers=headers, client=("198.51.100.4", 1234))
    fetch(app, link_path(link), client=("198.51.100.4", 1234))
    fetch(app, "/dl/forged/acme/2030-01-01T00:00:00Z/big.bin")
    fetch(app, "/dl/nope")
    assert DownloadEvent.objects.count() == 0  # nothing written on the request path
    assert audit_writer.flush() == 4
    events = list(DownloadEvent.objects.order_by("id"))
    assert [(e.status, e.outcome) for e in events] == [
        (206, "partial"),
        (200, "served"),
        (404, "invalid"),
        (403, "forbidden"),
    ]
    partial = events[0]
    assert (partial.link_id, partial.customer, partial.path) == (link.pk, "acme", "big.bin")
    assert (partial.ip, partial.user_agent, partial.range, partial.bytes_sent) == (
        "198.51.100.4",
        "curl/8.5",
        "10-19/1048576",
        10,
    )
    assert events[1].bytes_sent == len(BIG)
    assert abs((partial.at - datetime.now(UTC)).total_seconds()) < 60
    link.refresh_from_db()
    assert link.download_count == 1  # the full GET; the resumed range does not count
    assert link.last_fetched_at is not None
    # One bus event per attempt, in the audit's order, with what the audit row says.
    published = [
        (row.type, row.data, row.occurred_at)
        for row in OutboxEvent.objects.filter(type__in=["downloads.served", "downloads.refused"]).order_by("id")
    ]
    assert [type for type, _, _ in published] == [
        "downloads.served",
        "downloads.served",
        "downloads.refused",
        "downloads.refused",
    ]
    for (_, data, occurred_at), event in zip(published, events, strict=True):
        assert data == {
            "link": event.link_id,
            "customer": event.customer,
            "path": event.path,
            "method": "GET",
            "status": event.status,
            "outcome": event.outcome,
            "range": event.range,
            "bytes": event.bytes_sent,
            "ip": event.ip,
            "at": format_utc(event.at),
        }
        assert occurred_at == event.at.replace(microsecond=event.at.microsecond // 1000 * 1000)
    assert published[0][1]["range"] == "10-19/1048576"
    assert published[0][1]["ip"] == "198.51.100.4"
    assert published[1][1]["bytes"] == len(BIG)
    assert published[2][1]["link"] is None
    assert published[3][1]["path"] == "nope"
    assert OutboxEvent.objects.filter(type="downloads.link_created").count() == 1


@pytest.mark.postgres
def test_a_rolled_back_audit_batch_publishes_nothing_and_its_retry_publishes_each_attempt_once(
    make_app, make_link, audit_writer, monkeypatch
):
    import messaging
    from messaging.models import OutboxEvent

    link = make_link()
    app = make_app()
    for _ in range(3):
        fetch(app, link_path(link))
    real_publish_many = messaging.publish_many

    def publish_then_fail(events):
        real_publish_many(events)
        raise DatabaseError("the disk filled up after the outbox rows")

    monkeypatch.setattr(messaging, "publish_many", publish_then_fail)
    assert audit_writer.flush() == 0
    assert DownloadEvent.objects.count() == 0
    assert OutboxEvent.objects.filter(type__startswith="downloads.").exclude(type="downloads.link_created").count() == 0
    assert audit_writer.pending == 3  # kept for the next round
    monkeypatch.setattr(messaging, "publish_many", real_publish_many)
    assert audit_writer.flush() == 3
    assert DownloadEvent.objects.count() == 3
    assert OutboxEvent.objects.filter(type="downloads.served").count() == 3
    link.refresh_from_db()
    assert link.download_count == 3


@pytest.mark.postgres
def test_a_nul_in_a_requested_path_does_not_stop_the_audit(make_app, make_link, audit_writer):
    from messaging.models import OutboxEvent

    app = make_app(DOWNLOADS_LEGACY_SECRET=POST_SECRET)
    response = fetch(app, _legacy("dir1/example1.txt\x00.jpg"))
    assert response.status == 404
    fetch(app, "/dl/forged/acme/2030-01-01T00:00:00Z/a\x00b")
    fetch(app, link_path(make_link()))
    assert audit_writer.flush() == 3
    assert audit_writer.pending == 0
    paths = list(DownloadEvent.objects.order_by("id").values_list("path", flat=True))
    assert paths == ["dir1/example1.txt\ufffd.jpg", "a\ufffdb", "dir1/example1.txt"]
    published = OutboxEvent.objects.filter(type__in=["downloads.served", "downloads.refused"]).order_by("id")
    assert [row.data["path"] for row in published] == paths


def test_nothing_queued_is_lost_when_the_writer_stops(make_app, make_link):
    from downloads.audit import AuditWriter

    writer = AuditWriter(batch_rows=1000, flush_interval=60)
    writer.start()
    app = make_app()
    app.submit = writer.submit
    for _ in range(25):
        fetch(app, link_path(make_link()))
    writer.stop()
    assert DownloadEvent.objects.count() == 25


# --- hostile input --------------------------------------------------------------------------------------


def _legacy(path: str) -> str:
    from zoneinfo import ZoneInfo

    from downloads.signing import LegacyConfig

    parts = sign_legacy_link(
        legacy=LegacyConfig(POST_SECRET, ZoneInfo("Europe/Madrid")),
        customer="acme",
        expiry="2030-01-01T00:00",
        path=path,
    )
    return "/dl/" + "/".join((parts.signature, parts.customer, parts.expiry, parts.path))


def _hub(path: str) -> str:
    # A fixed nonce: the test records the link and fetches it with separately built URLs.
    parts = sign_link(
        keys=KEYS, customer="acme", expires_at=datetime(2030, 1, 1, tzinfo=UTC), path=path, nonce="fixedNce"
    )
    return "/dl/" + "/".join((parts.signature, parts.customer, parts.expiry, parts.path))


HOSTILE_SIGNED_PATHS = [
    "../secret.txt",
    "dir1/../../secret.txt",
    "%2e%2e/secret.txt",
    "%252e%252e/secret.txt",
    "..%2fsecret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "dir1\\..\\..\\secret.txt",
    "dir1/example1.txt\x00.jpg",
    "a/" * 600 + "x",
    "escape.txt",
    "escape_dir/secret.txt",
    "dir1",
    ".",
]


@pytest.mark.parametrize("path", HOSTILE_SIGNED_PATHS)
def test_a_correctly_signed_legacy_link_never_serves_a_byte_outside_the_root(make_app, path):
    app = make_app(DOWNLOADS_LEGACY_SECRET=POST_SECRET)
    response = fetch(app, _legacy(path))
    assert response.status in (403, 404)
    assert b"outside the root" not in response.body
    assert b"root:" not in response.body


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in HOSTILE_SIGNED_PATHS
        if not p.startswith(("..", "/", "dir1/..", "dir1\\", "."))
        and "\x00" not in p
        and len(p) < 1024
        and "//" not in p
    ],
)
def test_a_correctly_signed_hub_link_never_serves_a_byte_outside_the_root(make_app, path, make_link, customer):
    from downloads.models import Customer

    DownloadLink.objects.create(
        customer=Customer.objects.get(slug="acme"),
        path=path,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        signature=_hub(path).split("/")[2],
        expiry_text="2030-01-01T00:00:00Z",
    )
    response = fetch(make_app(), _hub(path))
    assert (response.status, response.body) == (404, b"File not found\n")


@pytest.mark.parametrize(
    "path",
    [
        "/dl/../../etc/passwd",
        "/dl/a/b/c/../../../../etc/passwd",
        "/dl/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/dl/x/acme/2030-01-01T00:00:00Z/\x00",
        "/dl/" + "A" * 100_000,
        "/dl/" + "a/" * 5000,
        "/dl/\udcff\udcfe/acme/2030/x",
        "/dl/k2.\u00e9\u00e9/acme/2030-01-01T00:00:00Z/x",
    ],
)
def test_hostile_paths_are_answered_without_error(make_app, path):
    response = fetch(make_app(DOWNLOADS_LEGACY_SECRET=POST_SECRET), path)
    assert response.status in (403, 404)


def test_huge_and_odd_headers_are_answered_without_error(make_app, make_link):
    link = make_link()
    headers = [("User-Agent", "x" * 100_000), ("Range", "bytes=" + "1" * 100_000 + "-"), ("X-Real-IP", "not an ip")]
    headers += [(f"X-Filler-{i}", "y" * 1000) for i in range(200)]
    response = fetch(make_app(), link_path(link), headers=headers)
    assert (response.status, response.body) == (200, b"hello\n")


def test_a_client_that_leaves_mid_stream_stops_the_stream_and_the_audit_says_how_much_went(
    make_app, make_link, audit_writer
):
    import asyncio

    app = make_app()
    path = link_path(make_link("big.bin"))
    sent_chunks = []
    first_chunk_sent = asyncio.Event()
    gone = asyncio.Event()

    async def receive():
        if not hasattr(receive, "started"):
            receive.started = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await first_chunk_sent.wait()
        gone.set()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body" and message.get("body"):
            sent_chunks.append(message["body"])
            first_chunk_sent.set()
            await gone.wait()  # the client is slow: before its first chunk is taken, it goes away

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "client": ("127.0.0.1", 1)}
    asyncio.run(app(scope, receive, send))
    assert 1 <= len(sent_chunks) < 4  # 1 MiB would be four 256 KiB chunks
    audit_writer.flush()
    event = DownloadEvent.objects.get()
    assert event.bytes_sent == sum(len(chunk) for chunk in sent_chunks) < len(BIG)
