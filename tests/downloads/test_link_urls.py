"""One URL per link: new links carry a nonce, links issued before it keep working with the strictest state of
every row behind their URL, a second legacy link with the same fields is refused; legacy fields cut elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError

from downloads.models import DownloadLink
from downloads.services import LinkError, link_create, link_revoke
from downloads.signing import LinkParts, legacy_signature
from tests.downloads.conftest import POST_SECRET, fetch, link_path
from tests.downloads.test_signing import PRE_NONCE_VECTOR

# Uniqueness and exact counting are the database's work: these run again on PostgreSQL.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

EXPIRES = datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)


def _row_issued_before_nonces(customer, *, signature, expiry_text, path, expires_at, fmt="hub", **fields):
    """A row as the hub wrote it before this change (no nonce), for a URL already in a customer's hands."""
    return DownloadLink.objects.create(
        customer=customer,
        path=path,
        expires_at=expires_at,
        format=fmt,
        key_id="k2" if fmt == "hub" else "",
        signature=signature,
        expiry_text=expiry_text,
        **fields,
    )


def _pre_nonce_rows(customer, count=2, **fields):
    signature, _, expiry, path = PRE_NONCE_VECTOR
    return [
        _row_issued_before_nonces(
            customer, signature=signature, expiry_text=expiry, path=path, expires_at=EXPIRES, **fields
        )
        for _ in range(count)
    ]


def _legacy_rows(customer, settings, count=2, **fields):
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    expiry = "2099-01-02T04:04"  # Europe/Madrid, the fixture's legacy zone
    signature = legacy_signature(POST_SECRET, "acme", expiry, "dir1/example1.txt")
    return [
        _row_issued_before_nonces(
            customer,
            signature=signature,
            expiry_text=expiry,
            path="dir1/example1.txt",
            expires_at=EXPIRES.replace(second=0),
            fmt="legacy",
            **fields,
        )
        for _ in range(count)
    ]


def test_a_url_issued_before_nonces_still_downloads(make_app, customer):
    (link,) = _pre_nonce_rows(customer, count=1)
    path = "/dl/" + "/".join(PRE_NONCE_VECTOR)
    assert link_path(link) == path
    response = fetch(make_app(), path)
    assert (response.status, response.body) == (200, b"hello\n")


def test_two_new_links_with_equal_fields_get_their_own_urls_caps_and_revocations(make_app, customer):
    def make(**kwargs):
        return link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES, **kwargs)

    first, second = make(max_downloads=1), make(max_downloads=1)
    assert link_path(first) != link_path(second)
    assert first.nonce
    assert first.nonce != second.nonce
    app = make_app()
    assert fetch(app, link_path(first)).status == 200
    assert fetch(app, link_path(first)).body == b"Download limit reached\n"
    assert fetch(app, link_path(second)).status == 200  # its own cap, untouched by the first's
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.download_count, second.download_count) == (1, 1)

    revoked, kept = make(), make()
    link_revoke(link=revoked)
    assert fetch(app, link_path(revoked)).body == b"Link revoked\n"
    assert fetch(app, link_path(kept)).status == 200


def test_the_database_refuses_a_second_row_with_a_nonce_signature(customer, downloads_root):
    link = link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES)
    with pytest.raises(IntegrityError):
        DownloadLink.objects.create(
            customer=customer,
            path=link.path,
            expires_at=link.expires_at,
            signature=link.signature,
            nonce=link.nonce,
            expiry_text=link.expiry_text,
        )


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("fmt", ["hub", "legacy"])
def test_revoking_either_of_two_rows_sharing_an_old_url_stops_that_url(make_app, customer, settings, fmt, which):
    rows = _pre_nonce_rows(customer) if fmt == "hub" else _legacy_rows(customer, settings)
    app = make_app()
    path = link_path(rows[0], prefix="/dl/")
    assert link_path(rows[1]) == path
    assert fetch(app, path).status == 200
    link_revoke(link=rows[which])
    response = fetch(app, path)
    assert (response.status, response.body) == (410, b"Link revoked\n")


def test_an_old_url_shared_by_capped_rows_is_used_up_when_any_is_and_counts_on_every_one(make_app, customer):
    loose, tight = _pre_nonce_rows(customer, count=1, max_downloads=3) + _pre_nonce_rows(
        customer, count=1, max_downloads=1
    )
    app = make_app()
    path = link_path(loose)
    assert fetch(app, path).status == 200
    response = fetch(app, path)
    assert (response.status, response.body) == (410, b"Download limit reached\n")
    loose.refresh_from_db(), tight.refresh_from_db()
    assert (loose.download_count, tight.download_count) == (1, 1)


def test_a_second_legacy_link_with_the_same_fields_is_refused_naming_the_first(customer, downloads_root, settings):
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    first = link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES, legacy=True)
    with pytest.raises(LinkError, match=f"Legacy link #{first.pk} ") as refused:
        link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES, legacy=True, max_downloads=2)
    assert refused.value.field == "legacy"
    assert DownloadLink.objects.count() == 1
    # Another expiry (another URL) and a hub link with the same fields are fine.
    link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES + timedelta(hours=1), legacy=True)
    link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES)


def test_the_command_refuses_a_second_legacy_link_with_the_same_fields(customer, downloads_root, settings):
    from django.core.management import CommandError, call_command

    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    call_command("create_secure_link", "acme", "2099-08-15T20:30", "dir1/example1.txt", "--legacy")
    first = DownloadLink.objects.get()
    with pytest.raises(CommandError, match=f"Legacy link #{first.pk} "):
        call_command("create_secure_link", "acme", "2099-08-15T20:30", "dir1/example1.txt", "--legacy")


# --- legacy fields cut at other places (served through the app) ------------------------------------------


def _legacy_path(customer: str, expiry: str, path: str, signature: str | None = None) -> str:
    signature = signature or legacy_signature(POST_SECRET, customer, expiry, path)
    return "/dl/" + "/".join((signature, customer, expiry, path))


@pytest.mark.parametrize("customer", ["acme", "ACME", "acme.com", "Café"])
def test_legacy_links_of_the_old_tools_customers_are_served(make_app, settings, customer):
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    response = fetch(make_app(), _legacy_path(customer, "2099-08-15T20:30", "dir1/example1.txt"))
    assert (response.status, response.body) == (200, b"hello\n")


def test_the_posts_worked_example_is_authentic_and_expired(make_app, settings):
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    response = fetch(make_app(), "/dl/YjZhNDAzZDY0/acme/2015-08-15T20:30/dir1/example1.txt")
    assert (response.status, response.body) == (410, b"Link expired\n")


def test_a_re_cut_legacy_link_gets_the_generic_404(make_app, settings, downloads_root):
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    (downloads_root / "x").mkdir()
    (downloads_root / "x" / "other.txt").write_text("another file\n")
    app = make_app()
    # Issued for a file under a date-named folder, long expired.
    expired = LinkParts(
        legacy_signature(POST_SECRET, "acme", "2015-08-15T20:30", "2099-01-01T00:00x/other.txt"),
        "acme",
        "2015-08-15T20:30",
        "2099-01-01T00:00x/other.txt",
    )
    assert fetch(app, "/dl/" + "/".join(_fields(expired))).status == 410
    # Date characters moved into the customer: the same signed bytes, now unexpired and naming another file.
    into_customer = (expired.signature, "acme2015-08-15T20:30", "2099-01-01T00:00", "x/other.txt")
    # Customer characters moved into the date.
    into_date = (expired.signature, "ac", "me2015-08-15T20:", "302099-01-01T00:00x/other.txt")
    for parts in (into_customer, into_date):
        response = fetch(app, "/dl/" + "/".join(parts))
        assert (response.status, response.body) == (404, b"Not found\n"), parts


def _fields(parts: LinkParts) -> tuple[str, str, str, str]:
    return (parts.signature, parts.customer, parts.expiry, parts.path)


def test_two_legacy_links_with_the_same_fields_made_at_the_same_moment_give_one_link(
    customer, downloads_root, settings
):
    # Two admins (or an admin and a script) asking at once: both checks for an existing link ran before either
    # row was written, and two links shared one URL, so one's cap and revocation leaked into the other's.
    import contextlib
    import threading

    from django.db import connection

    from tests.support.waiting import retry_while_locked

    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    rounds, racers = 12, 4
    outcomes = []
    for round_ in range(rounds):
        barrier = threading.Barrier(racers)
        expires = EXPIRES + timedelta(hours=round_)

        def make(expires=expires, barrier=barrier):
            def create() -> None:
                with contextlib.suppress(LinkError):  # refused, naming the first: an outcome too
                    link_create(customer=customer, path="dir1/example1.txt", expires_at=expires, legacy=True)

            barrier.wait()
            try:
                # The in-memory SQLite test database answers "locked" at once where a file waits its turn.
                retry_while_locked(create, interval=0.01)
                outcomes.append("done")
            finally:
                connection.close()

        threads = [threading.Thread(target=make) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes == ["done"] * rounds * racers  # each racer made its link or was refused, naming the first
    assert DownloadLink.objects.count() == rounds


def test_a_second_legacy_link_for_a_revoked_one_is_refused_without_advising_to_send_it_again(
    customer, downloads_root, settings
):
    # The shared URL stays refused once any link behind it is revoked or used up: "send link #N again" would hand
    # the customer a link that answers 410.
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    first = link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES, legacy=True)
    link_revoke(link=first)
    with pytest.raises(LinkError) as refused:
        link_create(customer=customer, path="dir1/example1.txt", expires_at=EXPIRES, legacy=True)
    message = str(refused.value)
    assert f"Legacy link #{first.pk} " in message
    assert "send link" not in message
    assert "revoked" in message
    assert "choose another expiry" in message
