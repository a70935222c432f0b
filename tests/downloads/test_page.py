"""The dashboard's Downloads page: staff see links by state, the newest links and the latest attempts."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from downloads.models import DownloadEvent
from downloads.services import link_revoke


@pytest.fixture
def staff_client(client, customer):
    # The customer fixture flushes the tables after each test (transactional), groups included: use the flag.
    client.force_login(User.objects.create_user("stella", is_staff=True))
    return client


def test_staff_see_links_by_state_and_the_latest_attempts(staff_client, make_link):
    make_link()
    revoked = make_link("big.bin")
    link_revoke(link=revoked)
    DownloadEvent.objects.create(
        link=revoked, customer="acme", path="big.bin", status=410, outcome="revoked", at=datetime.now(UTC)
    )
    html = staff_client.get("/downloads/").content.decode()
    assert 'data-testid="count-active">1<' in html
    assert 'data-testid="count-revoked">1<' in html
    assert "dir1/example1.txt" in html
    assert "410 revoked" in html
    assert 'href="/admin/downloads/downloadlink/add/"' in html


def test_an_empty_hub_says_so_and_offers_the_first_link(staff_client):
    html = staff_client.get("/downloads/").content.decode()
    assert "No links yet" in html
    assert "Nobody has fetched a link yet" in html


def test_members_who_are_not_staff_may_not_see_it(client, transactional_db):
    client.force_login(User.objects.create_user("hank"))
    assert client.get("/downloads/").status_code == 403
