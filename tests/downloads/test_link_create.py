"""link_create's retry when a fresh link's signature is already taken (a nonce drawn twice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError

from downloads import services
from downloads.models import DownloadLink
from downloads.signing import LinkParts


def colliding_sign_link(monkeypatch, taken: DownloadLink, times: int) -> list[int]:
    """sign_link hands back ``taken``'s signature for its next ``times`` calls, then signs as usual."""
    real = services.sign_link
    calls = []

    def sign_link(**kwargs):
        calls.append(1)
        if len(calls) <= times:
            return LinkParts(taken.signature, taken.customer.slug, taken.expiry_text, taken.path)
        return real(**kwargs)

    monkeypatch.setattr(services, "sign_link", sign_link)
    return calls


def test_a_signature_already_taken_is_signed_again_with_a_fresh_nonce(make_link, customer, monkeypatch):
    taken = make_link()
    calls = colliding_sign_link(monkeypatch, taken, times=2)
    link = services.link_create(
        customer=customer, path="dir1/example1.txt", expires_at=datetime.now(UTC) + timedelta(days=7)
    )
    assert len(calls) == 3
    assert link.signature != taken.signature
    assert DownloadLink.objects.count() == 2


def test_three_signatures_taken_in_a_row_give_up_and_write_nothing(make_link, customer, monkeypatch):
    taken = make_link()
    colliding_sign_link(monkeypatch, taken, times=3)
    with pytest.raises(IntegrityError):
        services.link_create(
            customer=customer, path="dir1/example1.txt", expires_at=datetime.now(UTC) + timedelta(days=7)
        )
    assert list(DownloadLink.objects.all()) == [taken]
