"""Replacing SECRET_KEY keeps the download links already sent working while the old key is a fallback.

The key settings come from ``hub/settings.py`` executed afresh under each environment (as a restart with a new
.env would read them) and the downloads app makes the ring from them; the links are fetched through the lean
download app.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import runpy
from pathlib import Path

import pytest

from tests.downloads.conftest import fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "hub" / "settings.py"
KEY_A = "key-A-" + "a1b2c3d4e5" * 6
KEY_B = "key-B-" + "f6g7h8i9j0" * 6


KEY_SETTINGS = ("DOWNLOADS_KEYS", "SECRET_KEY", "SECRET_KEY_FALLBACKS")


@pytest.fixture
def key_ring_under(monkeypatch, tmp_path):
    """``key_ring_under(SECRET_KEY=…, …)`` → the settings the key ring is made from, as ``hub/settings.py`` reads
    them under that environment (apply them with ``make_app(**…)`` or :func:`use`)."""

    def load(**environ: str) -> dict:
        for name in (*KEY_SETTINGS, "HUB_MODE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        loaded = runpy.run_path(str(SETTINGS_FILE), run_name="hub_settings_under_test")
        return {name: loaded[name] for name in KEY_SETTINGS}

    return load


def use(settings, ring_settings: dict) -> None:
    for name, value in ring_settings.items():
        setattr(settings, name, value)


def test_a_link_made_under_key_a_still_downloads_after_secret_key_b_with_a_as_fallback(
    make_app, make_link, settings, key_ring_under
):
    use(settings, key_ring_under(SECRET_KEY=KEY_A))
    sent = make_link()

    rotated = key_ring_under(SECRET_KEY=KEY_B, SECRET_KEY_FALLBACKS=KEY_A)
    response = fetch(make_app(**rotated), link_path(sent))
    assert (response.status, response.body) == (200, b"hello\n")

    # Without the fallback the old link is dead, as it would be once the fallback is dropped.
    dropped = key_ring_under(SECRET_KEY=KEY_B)
    assert fetch(make_app(**dropped), link_path(sent)).status == 404


def test_new_links_after_the_rotation_are_signed_with_the_new_key(make_app, make_link, settings, key_ring_under):
    use(settings, key_ring_under(SECRET_KEY=KEY_A))
    old = make_link()
    use(settings, key_ring_under(SECRET_KEY=KEY_B, SECRET_KEY_FALLBACKS=KEY_A))
    new = make_link("big.bin")
    assert new.key_id != old.key_id, "two keys never share an id, or an old link would be checked with the new key"

    # The new link does not verify under the old key alone: it was really signed with B.
    assert fetch(make_app(**key_ring_under(SECRET_KEY=KEY_A)), link_path(new)).status == 404
    assert fetch(make_app(**key_ring_under(SECRET_KEY=KEY_B)), link_path(new)).status == 200


def test_a_link_from_before_fallbacks_existed_still_downloads_under_the_old_key_as_fallback(
    make_app, make_link, settings, key_ring_under
):
    # Until now the derived ring held one key, always called "sk", derived from the SECRET_KEY of the day.
    derived_a = hmac.new(KEY_A.encode(), b"hub downloads signing key", hashlib.sha256).digest()
    settings.DOWNLOADS_KEYS = "sk:" + base64.b64encode(derived_a).decode()
    sent = make_link()
    assert sent.key_id == "sk"

    for rotated in (
        key_ring_under(SECRET_KEY=KEY_A),  # not rotated yet
        key_ring_under(SECRET_KEY=KEY_B, SECRET_KEY_FALLBACKS=KEY_A),
        key_ring_under(SECRET_KEY="key-C-" + "k1l2m3n4o5" * 6, SECRET_KEY_FALLBACKS=f"{KEY_B},{KEY_A}"),
    ):
        response = fetch(make_app(**rotated), link_path(sent))
        assert (response.status, response.body) == (200, b"hello\n")
