"""``manage.py create_secure_link``: the old tool's command line, its URL and its errors."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from downloads.models import DownloadLink
from tests.downloads.conftest import POST_SECRET, fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_secure_link", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


@pytest.fixture
def acme(transactional_db):
    from downloads.services import customer_create

    return customer_create(slug="acme", name="ACME Corp")


def test_it_prints_a_url_that_downloads_the_file_and_records_the_link(downloads_root, acme, make_app, settings):
    settings.HUB_PUBLIC_URL = "https://hub.example.org"
    url = run("acme", "2099-08-15T20:30", "dir1/example1.txt")
    link = DownloadLink.objects.get()
    assert url.startswith("https://hub.example.org/dl/k2.")
    assert url.endswith("/acme/2099-08-15T18:30:00Z/dir1/example1.txt")  # 20:30 Madrid summer time, in UTC
    assert (link.customer.slug, link.path, link.format) == ("acme", "dir1/example1.txt", "hub")
    assert link.expires_at == datetime(2099, 8, 15, 18, 30, tzinfo=UTC)
    response = fetch(make_app(), link_path(link))
    assert (response.status, response.body) == (200, b"hello\n")


def test_iso_8601_with_a_zone_is_accepted(downloads_root, acme):
    url = run("acme", "2099-01-01T10:00:00+02:00", "dir1/example1.txt", "--max-downloads", "3")
    assert "/acme/2099-01-01T08:00:00Z/" in url
    assert DownloadLink.objects.get().max_downloads == 3


def test_legacy_prints_the_old_format_that_the_old_algorithm_accepts(downloads_root, acme, settings, make_app):
    settings.DOWNLOADS_LEGACY_SECRET = POST_SECRET
    settings.DOWNLOADS_HOST = "downloads.local"
    settings.HUB_PUBLIC_URL = "http://hub.local"
    url = run("acme", "2099-08-15T20:30", "dir1/example1.txt", "--legacy")
    from downloads.signing import legacy_signature

    signature = legacy_signature(POST_SECRET, "acme", "2099-08-15T20:30", "dir1/example1.txt")
    assert url == f"http://downloads.local/{signature}/acme/2099-08-15T20:30/dir1/example1.txt"
    response = fetch(
        make_app(), f"/{signature}/acme/2099-08-15T20:30/dir1/example1.txt", headers=[("Host", "downloads.local")]
    )
    assert response.status == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("acme", "2099-01-01T10:00", "dir1/missing.txt"), "no file 'dir1/missing.txt'"),
        (("acme", "2099-01-01T10:00", "../secret.txt"), "not a file under the downloads root"),
        (("acme", "2099-01-01T10:00", "/etc/passwd"), "not a file under the downloads root"),
        (("acme", "2099-01-01T10:00", "escape.txt"), "not a file under the downloads root"),
        (("acme", "2015-13-45T99:99", "dir1/example1.txt"), "not a real date"),
        (("acme", "next tuesday", "dir1/example1.txt"), "is not a date"),
        (("acme", "2099-01-01T10:00:00", "dir1/example1.txt"), "has no zone"),
        (("acme", "2015-08-15T20:30", "dir1/example1.txt"), "in the past"),
        (("ACME Corp", "2099-01-01T10:00", "dir1/example1.txt", "--create-customer"), "customer id 'ACME Corp'"),
        (("acme", "2099-01-01T10:00", "dir1/example1.txt", "--legacy"), "DOWNLOADS_LEGACY_SECRET"),
    ],
)
def test_errors_stop_it_with_a_clear_message(downloads_root, acme, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert DownloadLink.objects.count() == 0


def test_an_unknown_customer_is_refused_and_nothing_is_created(downloads_root, acme):
    from downloads.models import Customer

    with pytest.raises(CommandError, match=r"no customer with id 'acne'.*--create-customer"):
        run("acne", "2099-01-01T10:00", "dir1/example1.txt")
    assert list(Customer.objects.values_list("slug", flat=True)) == ["acme"]
    assert DownloadLink.objects.count() == 0


def test_create_customer_makes_an_unknown_customer_and_its_link(downloads_root):
    from downloads.models import Customer

    err = StringIO()
    call_command(
        "create_secure_link", "newco", "2099-01-01T10:00", "dir1/example1.txt", "--create-customer", stderr=err
    )
    assert "created customer 'newco'" in err.getvalue()
    assert DownloadLink.objects.get().customer == Customer.objects.get(slug="newco")


def test_create_customer_reuses_an_existing_customer(downloads_root, acme):
    run("acme", "2099-01-01T10:00", "dir1/example1.txt", "--create-customer")
    assert DownloadLink.objects.get().customer == acme


def test_a_link_that_cannot_be_made_leaves_no_new_customer_behind(downloads_root):
    from downloads.models import Customer

    with pytest.raises(CommandError, match="no file"):
        run("newco", "2099-01-01T10:00", "dir1/missing.txt", "--create-customer")
    assert Customer.objects.count() == 0


@pytest.mark.slow
def test_an_error_exits_non_zero_from_the_shell(downloads_root, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DOWNLOADS_ROOT": str(downloads_root), "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, check=True, capture_output=True)

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "create_secure_link", *args], env=env, capture_output=True, text=True
        )

    done = command("acme", "2099-01-01T10:00", "dir1/example1.txt")
    assert done.returncode == 1
    assert "no customer with id 'acme'" in done.stderr
    assert "--create-customer" in done.stderr
    assert done.stdout == ""
    done = command("acme", "2099-01-01T10:00", "nope.txt", "--create-customer")
    assert done.returncode == 1
    assert "no file 'nope.txt'" in done.stderr
    done = command("acme", "2099-01-01T10:00", "dir1/example1.txt", "--create-customer")
    assert done.returncode == 0, done.stderr
    assert "/acme/" in done.stdout
    assert "created customer 'acme'" in done.stderr
    done = command("acme", "2099-01-01T11:00", "dir1/example1.txt")  # known now: no flag needed
    assert done.returncode == 0, done.stderr
    assert "/acme/" in done.stdout
