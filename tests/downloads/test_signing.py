"""The link formats (legacy byte for byte, the hub's own) and path resolution: plain values, no Django."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import astuple, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from downloads.signing import (
    InvalidLink,
    KeyRing,
    LegacyConfig,
    LinkParts,
    UnsafePath,
    canonical_message,
    check_legacy_customer,
    legacy_signature,
    parse_key_ring,
    parse_legacy_expiry,
    resolve_under_real_root,
    resolve_under_root,
    sign_legacy_link,
    sign_link,
    split_link,
    stat_under_real_root,
    verify_link,
)

POST_SECRET = "This is just a long string to set a seed"
KEYS = KeyRing((("k2", b"k" * 32),))
LEGACY = LegacyConfig(POST_SECRET, ZoneInfo("Europe/Madrid"))
EXPIRY = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


# --- legacy ---------------------------------------------------------------------------------------------


def test_the_posts_worked_example_signs_byte_for_byte():
    assert legacy_signature(POST_SECRET, "acme", "2015-08-15T20:30", "dir1/example1.txt") == "YjZhNDAzZDY0"
    parts = sign_legacy_link(legacy=LEGACY, customer="acme", expiry="2015-08-15T20:30", path="dir1/example1.txt")
    assert "/" + parts.as_path() == "/YjZhNDAzZDY0/acme/2015-08-15T20:30/dir1/example1.txt"


def test_the_posts_worked_example_verifies_and_expires_at_local_time_of_its_zone():
    parts = split_link("YjZhNDAzZDY0/acme/2015-08-15T20:30/dir1/example1.txt")
    link = verify_link(parts, keys=KEYS, legacy=LEGACY)
    assert (link.format, link.customer, link.path) == ("legacy", "acme", "dir1/example1.txt")
    # 20:30 CEST is 18:30 UTC; valid strictly before.
    assert link.expires_at == datetime(2015, 8, 15, 18, 30, tzinfo=UTC)
    assert not link.is_expired(datetime(2015, 8, 15, 18, 29, 59, tzinfo=UTC))
    assert link.is_expired(datetime(2015, 8, 15, 18, 30, tzinfo=UTC))


def test_legacy_expiry_follows_the_configured_zone():
    assert parse_legacy_expiry("2015-08-15T20:30", ZoneInfo("UTC")) == datetime(2015, 8, 15, 20, 30, tzinfo=UTC)
    assert parse_legacy_expiry("2015-01-15T20:30", ZoneInfo("Europe/Madrid")) == datetime(
        2015, 1, 15, 19, 30, tzinfo=UTC
    )


def test_legacy_links_are_refused_without_the_legacy_secret():
    parts = split_link("YjZhNDAzZDY0/acme/2015-08-15T20:30/dir1/example1.txt")
    with pytest.raises(InvalidLink):
        verify_link(parts, keys=KEYS, legacy=None)


@pytest.mark.parametrize(
    "text",
    [
        "YjZhNDAzZDY1/acme/2015-08-15T20:30/dir1/example1.txt",  # changed signature
        "YjZhNDAzZDY/acme/2015-08-15T20:30/dir1/example1.txt",  # truncated
        "YjZhNDAzZDY0A/acme/2015-08-15T20:30/dir1/example1.txt",  # padded
        "YjZhNDAzZDY0/acmf/2015-08-15T20:30/dir1/example1.txt",  # another customer
        "YjZhNDAzZDY0/acme/2015-08-15T20:31/dir1/example1.txt",  # changed expiry
        "YjZhNDAzZDY0/acme/2015-08-15T20:30/dir1/example2.txt",  # changed path
        "YjZhNDAzZDY0/acme/2015-13-45T99:99/dir1/example1.txt",  # impossible date
    ],
)
def test_any_change_to_a_legacy_link_is_refused(text):
    with pytest.raises(InvalidLink):
        verify_link(split_link(text), keys=KEYS, legacy=LEGACY)


def test_an_impossible_date_is_refused_even_when_correctly_signed():
    signature = legacy_signature(POST_SECRET, "acme", "2015-13-45T99:99", "a.txt")
    with pytest.raises(InvalidLink):
        verify_link(LinkParts(signature, "acme", "2015-13-45T99:99", "a.txt"), keys=KEYS, legacy=LEGACY)


# --- the hub's format -----------------------------------------------------------------------------------


def test_a_hub_link_keeps_the_readable_shape_with_a_128_bit_mac_a_key_id_and_utc_expiry():
    parts = sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="dir1/example1.txt")
    key_id, nonce, mac = parts.signature.split(".")
    assert key_id == "k2"
    assert len(nonce) == 8
    assert set(nonce) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(mac) == 22  # 16 bytes of HMAC-SHA256, base64url
    assert parts.customer == "acme"
    assert parts.expiry == "2030-01-02T03:04:05Z"
    link = verify_link(split_link(parts.as_path()), keys=KEYS, legacy=None)
    assert (link.format, link.key_id, link.expires_at, link.path) == ("hub", "k2", EXPIRY, "dir1/example1.txt")


def test_a_hub_link_expiry_in_another_zone_is_written_in_utc():
    madrid = EXPIRY.astimezone(ZoneInfo("Europe/Madrid"))
    assert sign_link(keys=KEYS, customer="acme", expires_at=madrid, path="a").expiry == "2030-01-02T03:04:05Z"


def test_the_canonical_message_is_unambiguous_where_plain_concatenation_is_not():
    assert canonical_message("k", "ab", "c", "p") != canonical_message("k", "a", "bc", "p")
    assert canonical_message("k", "a", "b", "c/d") != canonical_message("k", "a", "bc/", "d")


def test_non_ascii_paths_survive_the_url_round_trip():
    parts = sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="Größe/naïve file.pdf")
    assert "%C3%B6" in parts.as_path()
    from urllib.parse import unquote

    assert verify_link(split_link(unquote(parts.as_path())), keys=KEYS, legacy=None).path == "Größe/naïve file.pdf"


def test_key_rotation_signs_with_the_new_key_and_still_verifies_links_made_with_the_old_one():
    old_ring = parse_key_ring("k1:" + "b2xkc2VjcmV0b2xkc2VjcmV0b2xkc2VjcmV0")
    old_link = sign_link(keys=old_ring, customer="acme", expires_at=EXPIRY, path="a.txt")
    rotated = parse_key_ring("k2:bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0, k1:b2xkc2VjcmV0b2xkc2VjcmV0b2xkc2VjcmV0")
    new_link = sign_link(keys=rotated, customer="acme", expires_at=EXPIRY, path="a.txt")
    assert new_link.signature.startswith("k2.")
    assert verify_link(old_link, keys=rotated, legacy=None).key_id == "k1"
    assert verify_link(new_link, keys=rotated, legacy=None).key_id == "k2"
    # Once the old key is dropped from the ring, its links stop verifying.
    retired = parse_key_ring("k2:bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0")
    with pytest.raises(InvalidLink):
        verify_link(old_link, keys=retired, legacy=None)
    # A link relabelled with another key id is not authentic either.
    relabelled = replace(old_link, signature="k2." + old_link.signature.split(".", 1)[1])
    with pytest.raises(InvalidLink):
        verify_link(relabelled, keys=rotated, legacy=None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("k1", "entry 1 is not key_id:base64secret"),
        ("k1:@@@", "not base64"),
        ("k1:c2hvcnQ=", "shorter than 16 bytes"),
        ("k1:" + "A" * 44 + ",k1:" + "B" * 44, "appears twice"),
        ("bad id!:" + "A" * 44, "must match"),
    ],
)
def test_a_malformed_key_ring_says_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_key_ring(text)


# Links issued before nonces: `<key id>.<mac>`, the MAC over the v1 message (tag, key id, customer, expiry,
# path). The vector below was printed by the hub's code of that time; the function re-derives it independently.
PRE_NONCE_VECTOR = (
    "k2.vt2_Dy5B51dnNtTlWToJZw",
    "acme",
    "2099-01-02T03:04:05Z",
    "dir1/example1.txt",
)


def pre_nonce_signature(key_id: str, secret: bytes, customer: str, expiry: str, path: str) -> str:
    message = b"hub-download-link/v1" + b"".join(
        len(field.encode()).to_bytes(4, "big") + field.encode() for field in (key_id, customer, expiry, path)
    )
    mac = hmac.new(secret, message, hashlib.sha256).digest()[:16]
    return key_id + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_a_link_issued_before_nonces_still_verifies_byte_for_byte():
    signature, customer, expiry, path = PRE_NONCE_VECTOR
    assert pre_nonce_signature("k2", b"k" * 32, customer, expiry, path) == signature
    link = verify_link(split_link("/".join(PRE_NONCE_VECTOR)), keys=KEYS, legacy=None)
    assert (link.format, link.key_id, link.signature, link.nonce) == ("hub", "k2", signature, "")
    assert link.expires_at == datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_two_links_with_equal_fields_get_different_urls_that_each_verify():
    one = sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="a.txt")
    two = sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="a.txt")
    assert one.signature != two.signature
    assert one.as_path().split("/", 1)[1] == two.as_path().split("/", 1)[1]  # still the readable four parts
    for parts in (one, two):
        verified = verify_link(split_link(parts.as_path()), keys=KEYS, legacy=None)
        assert verified.nonce == parts.signature.split(".")[1]


def test_the_nonce_is_signed_as_its_own_field():
    parts = sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="a.txt", nonce="AAAAAAAA")
    key_id, _, mac = parts.signature.split(".")
    assert canonical_message("k2", "acme", parts.expiry, "a.txt", "AAAAAAAA") != canonical_message(
        "k2", "acme", parts.expiry, "a.txt"
    )
    for forged in (f"{key_id}.AAAAAAAB.{mac}", f"{key_id}.{mac}", f"{key_id}.AAAAAAAA.{mac}.x", f"k2AAAAAAAA.{mac}"):
        with pytest.raises(InvalidLink):
            verify_link(replace(parts, signature=forged), keys=KEYS, legacy=None)
    with pytest.raises(ValueError, match="nonce"):
        sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="a.txt", nonce="short")


def test_the_customer_id_of_a_hub_link_must_be_url_safe():
    with pytest.raises(ValueError, match="customer id"):
        sign_link(keys=KEYS, customer="ACME/x", expires_at=EXPIRY, path="a")


def test_split_link_needs_the_four_part_shape():
    assert split_link("a/b/c") is None
    assert split_link("a//c/d") is None
    assert split_link("") is None
    assert split_link("a/b/c/d/e") == LinkParts("a", "b", "c", "d/e")


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=20)


@st.composite
def _valid_link_and_a_change(draw):
    customer = draw(st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True))
    path = "/".join(draw(st.lists(st.from_regex(r"[A-Za-z0-9 ._é-]{1,8}", fullmatch=True), min_size=1, max_size=3)))
    path = "/".join(segment if segment not in (".", "..") else "x" for segment in path.split("/"))
    expires_at = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))).replace(
        tzinfo=UTC, microsecond=0
    )
    parts = sign_link(keys=KEYS, customer=customer, expires_at=expires_at, path=path)
    fields = list(astuple(parts))
    which = draw(st.integers(0, 3))
    original = fields[which]
    how = draw(st.sampled_from(["replace", "truncate", "append", "flip"]))
    if how == "replace":
        changed = draw(_text)
    elif how == "truncate":
        changed = original[: draw(st.integers(0, len(original) - 1))]
    elif how == "append":
        changed = original + draw(_text)
    else:
        index = draw(st.integers(0, len(original) - 1))
        changed = original[:index] + chr(ord(original[index]) ^ draw(st.integers(1, 127))) + original[index + 1 :]
    if changed == original:
        changed = original + "x"
    fields[which] = changed
    return parts, LinkParts(*fields)


@settings(max_examples=500, deadline=None)
@given(_valid_link_and_a_change())
def test_no_change_to_any_part_of_a_valid_link_verifies(pair):
    valid, changed = pair
    assert verify_link(valid, keys=KEYS, legacy=LEGACY).format == "hub"
    with pytest.raises(InvalidLink):
        verify_link(changed, keys=KEYS, legacy=LEGACY)


# --- paths ----------------------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path):
    downloads = tmp_path / "downloads"
    (downloads / "dir1").mkdir(parents=True)
    (downloads / "dir1" / "example1.txt").write_text("hello\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    os.symlink(tmp_path / "secret.txt", downloads / "escape.txt")
    os.symlink(downloads / "dir1" / "example1.txt", downloads / "inside.txt")
    return downloads


def test_a_plain_relative_path_resolves_inside_the_root(root):
    assert resolve_under_root(root, "dir1/example1.txt") == (root / "dir1" / "example1.txt").resolve()


def test_a_symlink_that_stays_inside_the_root_is_followed(root):
    assert resolve_under_root(root, "inside.txt") == (root / "dir1" / "example1.txt").resolve()


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "dir1/../../secret.txt",
        "dir1/../dir1/example1.txt",
        "./dir1/example1.txt",
        "/etc/passwd",
        "dir1\\..\\..\\secret.txt",
        "..\\secret.txt",
        "dir1/example1.txt\x00.jpg",
        "dir1//example1.txt",
        "a" * 2000,
        "escape.txt",
        "",
    ],
)
def test_paths_that_could_leave_the_root_are_refused(root, path):
    with pytest.raises(UnsafePath):
        resolve_under_root(root, path)


@pytest.mark.parametrize("path", ["%2e%2e/secret.txt", "%252e%252e/secret.txt", "..%2fsecret.txt"])
def test_encoded_dots_are_names_not_parent_steps(root, path):
    resolved = resolve_under_root(root, path)
    assert resolved.is_relative_to(root.resolve())
    assert not resolved.exists()


def test_a_correctly_signed_link_climbing_out_of_the_root_cannot_be_made_or_resolved(root):
    with pytest.raises(UnsafePath):
        sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="../secret.txt")
    forged_by_key_holder = sign_legacy_link(
        legacy=LEGACY, customer="acme", expiry="2030-01-01T00:00", path="../secret.txt"
    )
    link = verify_link(forged_by_key_holder, keys=KEYS, legacy=LEGACY)
    with pytest.raises(UnsafePath):
        resolve_under_root(root, link.path)


STAT_PATHS = [
    "dir1/example1.txt",
    "inside.txt",
    "inside_dir/example1.txt",
    "escape.txt",
    "escape_dir/secret.txt",
    "dir1/example1.txt/more",
    "missing.txt",
    "../secret.txt",
    "dir1/../../secret.txt",
    "/etc/passwd",
    "dir1\\..\\..\\secret.txt",
    "dir1/example1.txt\x00.jpg",
    "%2e%2e/secret.txt",
    "",
]


@pytest.mark.parametrize("path", STAT_PATHS)
def test_the_download_paths_stat_answers_as_resolve_and_stat_do(root, tmp_path, path):
    """stat_under_real_root is the download path's cheaper resolve_under_real_root + os.stat: same answers."""
    os.symlink(root / "dir1", root / "inside_dir")
    os.symlink(tmp_path, root / "escape_dir")
    real_root = os.path.realpath(root)

    def reference():
        real = resolve_under_real_root(real_root, path)
        return str(real), os.path.relpath(real, real_root), os.stat(real)

    try:
        expected = reference()
    except (UnsafePath, OSError) as exc:
        with pytest.raises(type(exc)):
            stat_under_real_root(real_root, path)
        return
    real, relative, status = stat_under_real_root(real_root, path)
    assert (real, relative) == expected[:2]
    assert (status.st_ino, status.st_size) == (expected[2].st_ino, expected[2].st_size)


def test_the_download_paths_stat_refuses_a_symlink_swapped_in_to_point_outside(root, tmp_path):
    real_root = os.path.realpath(root)
    assert stat_under_real_root(real_root, "dir1/example1.txt")[1] == "dir1/example1.txt"
    os.rename(root / "dir1", root / "dir1.old")
    os.symlink(tmp_path, root / "dir1")
    (tmp_path / "example1.txt").write_text("outside\n")
    with pytest.raises(UnsafePath):
        stat_under_real_root(real_root, "dir1/example1.txt")


def test_expiry_is_strict(root):
    link = verify_link(sign_link(keys=KEYS, customer="acme", expires_at=EXPIRY, path="a"), keys=KEYS, legacy=None)
    assert not link.is_expired(EXPIRY - timedelta(seconds=1))
    assert link.is_expired(EXPIRY)


@st.composite
def _legacy_link_and_a_change(draw):
    customer = draw(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/:"), min_size=1, max_size=12))
    path = draw(st.from_regex(r"[A-Za-z0-9 ._-]{1,8}(/[A-Za-z0-9 ._-]{1,8}){0,2}", fullmatch=True))
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)))
    parts = sign_legacy_link(legacy=LEGACY, customer=customer, expiry=moment.strftime("%Y-%m-%dT%H:%M"), path=path)
    fields = list(astuple(parts))
    which = draw(st.integers(0, 3))
    original = fields[which]
    index = draw(st.integers(0, len(original) - 1))
    how = draw(st.sampled_from(["flip", "truncate", "append", "move"]))
    if how == "flip":
        changed = original[:index] + chr(ord(original[index]) ^ draw(st.integers(1, 127))) + original[index + 1 :]
    elif how == "truncate":
        changed = original[:index]
    elif how == "append":
        changed = original + draw(_text)
    else:
        # Shift characters across a field boundary: the old format's concatenation would not notice.
        neighbour = (which + 1) % 4 if which < 3 else 2
        fields[neighbour] = fields[neighbour] + original[index:] if neighbour > which else original[index:]
        changed = original[:index]
    fields[which] = changed
    changed_parts = LinkParts(*fields)
    if changed_parts == parts or not all(fields[:3]):
        changed_parts = LinkParts(parts.signature, parts.customer, parts.expiry, parts.path + "x")
    return parts, changed_parts


@settings(max_examples=300, deadline=None)
@given(_legacy_link_and_a_change())
def test_no_change_to_any_part_of_a_valid_legacy_link_verifies(pair):
    valid, changed = pair
    assert verify_link(valid, keys=KEYS, legacy=LEGACY).format == "legacy"
    with pytest.raises(InvalidLink):
        verify_link(changed, keys=KEYS, legacy=LEGACY)


# --- legacy fields cut at other places ------------------------------------------------------------------


def _every_other_cut(parts: LinkParts):
    """Every reading of the same signed bytes (customer + expiry + path) with the fields cut elsewhere."""
    message = parts.customer + parts.expiry + parts.path
    for first in range(1, len(message)):
        for second in range(first + 1, len(message)):
            cut = LinkParts(parts.signature, message[:first], message[first:second], message[second:])
            if cut != parts and "/" not in cut.customer and "/" not in cut.expiry:
                yield cut


def test_a_legacy_link_re_cut_with_date_characters_moved_into_the_customer_is_refused():
    # An expired link whose path starts like a date: the old check accepted customer "acme2015-08-15T20:30" with
    # expiry "2031-01-01T00:00", a valid link to another file.
    parts = sign_legacy_link(legacy=LEGACY, customer="acme", expiry="2015-08-15T20:30", path="2031-01-01T00:00x/a")
    recut = LinkParts(parts.signature, "acme2015-08-15T20:30", "2031-01-01T00:00", "x/a")
    assert recut.customer + recut.expiry + recut.path == parts.customer + parts.expiry + parts.path
    with pytest.raises(InvalidLink):
        verify_link(recut, keys=KEYS, legacy=LEGACY)


def test_a_legacy_link_re_cut_with_customer_characters_moved_into_the_date_is_refused():
    parts = sign_legacy_link(legacy=LEGACY, customer="acme2015", expiry="2015-08-15T20:30", path="dir1/example1.txt")
    for recut in (
        LinkParts(parts.signature, "acme", "2015" + "2015-08-15T2", "0:30dir1/example1.txt"),
        LinkParts(parts.signature, "acme20", "152015-08-15T20", ":30dir1/example1.txt"),
    ):
        with pytest.raises(InvalidLink):
            verify_link(recut, keys=KEYS, legacy=LEGACY)


@pytest.mark.parametrize(
    "customer", ["acme", "ACME", "acme.com", "Café Ñandú", "客户", "acme2015", "2015-08-15", "x-12-34T56"]
)
def test_no_other_cut_of_a_legacy_link_verifies(customer):
    parts = sign_legacy_link(legacy=LEGACY, customer=customer, expiry="2015-08-15T20:30", path="2020-01-01T00:00/a")
    assert verify_link(parts, keys=KEYS, legacy=LEGACY).customer == customer
    cuts = list(_every_other_cut(parts))
    assert len(cuts) > 100
    for cut in cuts:
        with pytest.raises(InvalidLink):
            verify_link(cut, keys=KEYS, legacy=LEGACY)


@pytest.mark.parametrize("customer", ["ACME", "acme.com", "Café Ñandú"])
def test_legacy_customers_the_old_tool_accepted_still_verify(customer):
    signature = legacy_signature(POST_SECRET, customer, "2015-08-15T20:30", "dir1/example1.txt")
    link = verify_link(
        LinkParts(signature, customer, "2015-08-15T20:30", "dir1/example1.txt"), keys=KEYS, legacy=LEGACY
    )
    assert (link.format, link.customer) == ("legacy", customer)


@pytest.mark.parametrize(
    ("customer", "problem"),
    [
        ("acme2015-08-15T20:30", "contains a date"),
        ("2015-08-15T20:30", "contains a date"),
        ("acme:x", "':'"),
        ("", "needs a customer"),
    ],
)
def test_a_legacy_link_whose_customer_could_be_re_cut_is_never_issued(customer, problem):
    with pytest.raises(ValueError, match=problem):
        check_legacy_customer(customer)
    with pytest.raises(ValueError, match=problem):
        sign_legacy_link(legacy=LEGACY, customer=customer, expiry="2015-08-15T20:30", path="a")


def test_a_legacy_date_needs_ascii_digits():
    expiry = "\uff12\uff10\uff11\uff15-08-15T20:30"  # full-width digits match \d, but are not the old format
    signature = legacy_signature(POST_SECRET, "acme", expiry, "a")
    with pytest.raises(InvalidLink):
        verify_link(LinkParts(signature, "acme", expiry, "a"), keys=KEYS, legacy=LEGACY)
