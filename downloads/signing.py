"""Signed download links: the legacy format byte for byte, the hub's own format, and safe path resolution.

Pure: no Django. Both formats share the readable four-part shape
``<signature>/<customer>/<expiry>/<path>`` (described in ``docs/downloads-links.md``).

* Legacy (the old OpenResty tool): 12 characters of base64(hex(HMAC-SHA1(secret, customer+expiry+path))),
  expiry ``YYYY-MM-DDTHH:MM`` in the server's zone.
* Hub: ``<key id>.<nonce>.<base64url HMAC-SHA256, 128 bits>``, expiry ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), the MAC
  taken over a length-prefixed canonical message so no two field splits give the same bytes. The nonce (8
  random base64url characters) makes every issued link's URL its own, even when two links name the same
  customer, file and expiry. Links issued before the nonce existed, ``<key id>.<mac>``, still verify.

The legacy format signs ``customer + expiry + path`` with no separators, so a signature could be re-read with
the fields cut elsewhere. Fixing the expiry's shape (``T`` and ``:`` at known places) and refusing a ``:`` in
the customer leaves no other cut that verifies (see ``docs/downloads-links.md``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

CUSTOMER_ID_PATTERN = r"[a-z0-9_-]{1,64}"
KEY_ID_PATTERN = r"[A-Za-z0-9_-]{1,16}"
MAX_PATH_LENGTH = 1024
# 128 bits is the floor docs/downloads-links.md sets; the URL stays readable (22 characters).
MAC_BYTES = 16
MIN_SECRET_BYTES = 16

_CUSTOMER_RE = re.compile(CUSTOMER_ID_PATTERN)
_KEY_ID_RE = re.compile(KEY_ID_PATTERN)
# ASCII digits only: ``\d`` would also take other scripts' digits.
_LEGACY_EXPIRY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")
_HUB_EXPIRY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_LEGACY_SIGNATURE_RE = re.compile(r"[A-Za-z0-9_,-]{12}")
_HUB_MAC_RE = re.compile(r"[A-Za-z0-9_-]{22}")
NONCE_LENGTH = 8  # base64url characters: 48 random bits
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8}")
# NUL and the other control characters, DEL and backslash: one search instead of a test per character.
_UNSAFE_CHARACTER_RE = re.compile(r"[\x00-\x1f\x7f\\]")
_CANONICAL_TAG = b"hub-download-link/v1"
# Links with a nonce sign under their own tag, so no v1 message can ever equal a v2 one.
_CANONICAL_TAG_NONCE = b"hub-download-link/v2"
_LEGACY_TRANSLATION = str.maketrans({"+": "-", "/": "_", "=": ","})


class InvalidLink(Exception):
    """Not an authentic link (forged, tampered, truncated, malformed); callers must not say which."""


# --- Link text --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkParts:
    """The four parts of a link as they appear in the (percent-decoded) URL path."""

    signature: str
    customer: str
    expiry: str
    path: str

    def as_path(self) -> str:
        """The URL path below the prefix, percent-encoded where a URL needs it."""
        return (
            "/".join((quote(self.signature, safe=""), quote(self.customer, safe=""), quote(self.expiry, safe=":")))
            + "/"
            + quote(self.path, safe="/")
        )


def split_link(path: str) -> LinkParts | None:
    """``sig/customer/expiry/path`` → its parts; ``None`` when it does not have the four-part shape.

    The same shape the old nginx location matched: three non-empty segments, then anything.
    """
    pieces = path.split("/", 3)
    if len(pieces) != 4 or not all(pieces[:3]):
        return None
    return LinkParts(*pieces)


@dataclass(frozen=True, slots=True)
class VerifiedLink:
    """An authentic link (it may still be expired: see :meth:`is_expired`)."""

    format: str  # "hub" or "legacy"
    key_id: str  # "" for legacy links
    signature: str  # the URL's first part
    customer: str
    expiry: str
    expires_at: datetime  # aware, UTC
    path: str
    # "" for legacy links and hub links issued before nonces: their URL may stand for several recorded links.
    nonce: str = ""

    def is_expired(self, now: datetime) -> bool:
        # The old tool's rule, kept for both formats: valid while now < expiry, strictly.
        return now >= self.expires_at


# --- The hub's format -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    """Signing keys by id: the first is the active one, the rest still verify links made with them."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a key ring needs at least one key")
        seen = set()
        for key_id, secret in self.keys:
            if not _KEY_ID_RE.fullmatch(key_id):
                raise ValueError(f"key id {key_id!r} must match {KEY_ID_PATTERN}")
            if key_id in seen:
                raise ValueError(f"key id {key_id!r} appears twice")
            if len(secret) < MIN_SECRET_BYTES:
                raise ValueError(f"key {key_id!r} is shorter than {MIN_SECRET_BYTES} bytes")
            seen.add(key_id)

    @property
    def active_id(self) -> str:
        return self.keys[0][0]

    def secret(self, key_id: str) -> bytes | None:
        for known_id, secret in self.keys:
            if known_id == key_id:
                return secret
        return None


def parse_key_ring(text: str) -> KeyRing:
    """``kid2:base64secret,kid1:oldsecret`` (the first active) → a :class:`KeyRing`; ValueError when malformed."""
    keys = []
    for number, item in enumerate(text.split(","), start=1):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep:
            raise ValueError(f"entry {number} is not key_id:base64secret")  # never echo what may be a secret
        try:
            secret = base64.b64decode(
                encoded.strip() + "=" * (-len(encoded.strip()) % 4), altchars=b"-_", validate=True
            )
        except binascii.Error:
            # The standard alphabet too, so `openssl rand -base64 32` output works as it is.
            try:
                secret = base64.b64decode(encoded.strip(), validate=True)
            except binascii.Error:
                raise ValueError(f"the secret of key {key_id!r} is not base64") from None
        keys.append((key_id.strip(), secret))
    return KeyRing(tuple(keys))


#: The id links carried when the derived ring had one key; they were signed with the SECRET_KEY of their day.
FIRST_DERIVED_KEY_ID = "sk"


def _derived_key(secret_key: str) -> tuple[str, bytes]:
    derived = hmac.new(secret_key.encode(), b"hub downloads signing key", hashlib.sha256).digest()
    # The id names the key itself, not its place in the ring, so a link keeps naming the key that signed it
    # after SECRET_KEY changes; 48 bits of a hash of the derived key tell nothing about it.
    fingerprint = hashlib.sha256(b"hub downloads key id\0" + derived).digest()[:6]
    return FIRST_DERIVED_KEY_ID + base64.urlsafe_b64encode(fingerprint).decode("ascii"), derived


def derived_key_ring(secret_key: str, fallbacks: tuple[str, ...] | list[str] = ()) -> KeyRing:
    """The ring for hubs that set no DOWNLOADS_KEYS: SECRET_KEY's derived key signs, each fallback's verifies.

    ``fallbacks`` is Django's SECRET_KEY_FALLBACKS, newest first. Links made before fallbacks were read carry
    the id ``sk``: it stays the oldest key given (the last fallback, else SECRET_KEY), the key that was
    SECRET_KEY when those links were made unless it has since been dropped.
    """
    keys: dict[str, bytes] = {}
    for key in (secret_key, *fallbacks):
        key_id, derived = _derived_key(key)
        keys.setdefault(key_id, derived)  # a fallback equal to SECRET_KEY (or repeated) adds nothing
    keys[FIRST_DERIVED_KEY_ID] = _derived_key((secret_key, *fallbacks)[-1])[1]
    return KeyRing(tuple(keys.items()))


def format_hub_expiry(expires_at: datetime) -> str:
    if expires_at.tzinfo is None:
        raise ValueError("the expiry must be timezone-aware")
    return expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_message(key_id: str, customer: str, expiry: str, path: str, nonce: str | None = None) -> bytes:
    """Each field length-prefixed, so moving bytes from one field to its neighbour changes the message.

    ``nonce=None`` is the message of links issued before nonces (kept byte for byte so they still verify).
    """
    if nonce is None:
        tag, fields = _CANONICAL_TAG, (key_id, customer, expiry, path)
    else:
        tag, fields = _CANONICAL_TAG_NONCE, (key_id, nonce, customer, expiry, path)
    parts = [tag]
    for field in fields:
        encoded = field.encode("utf-8", "surrogatepass")
        parts.append(len(encoded).to_bytes(4, "big") + encoded)
    return b"".join(parts)


def _hub_mac(secret: bytes, key_id: str, customer: str, expiry: str, path: str, nonce: str | None = None) -> str:
    digest = hmac.new(secret, canonical_message(key_id, customer, expiry, path, nonce), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:MAC_BYTES]).rstrip(b"=").decode("ascii")


def new_nonce() -> str:
    """8 base64url characters from the operating system's random source."""
    return secrets.token_urlsafe(6)


def sign_link(*, keys: KeyRing, customer: str, expires_at: datetime, path: str, nonce: str | None = None) -> LinkParts:
    """A hub link for ``customer`` to ``path`` (relative to the downloads root) until ``expires_at``.

    Its first part is ``<key id>.<nonce>.<mac>``; a fresh random nonce unless one is given (tests, vectors).
    """
    if not _CUSTOMER_RE.fullmatch(customer):
        raise ValueError(f"customer id {customer!r} must match {CUSTOMER_ID_PATTERN}")
    check_relative_path(path)
    nonce = new_nonce() if nonce is None else nonce
    if not _NONCE_RE.fullmatch(nonce):
        raise ValueError(f"a nonce is {NONCE_LENGTH} base64url characters")
    expiry = format_hub_expiry(expires_at)
    key_id = keys.active_id
    mac = _hub_mac(keys.secret(key_id), key_id, customer, expiry, path, nonce)
    return LinkParts(f"{key_id}.{nonce}.{mac}", customer, expiry, path)


def link_nonce(signature: str) -> str:
    """The nonce inside a hub signature, "" for one issued before nonces (or a legacy signature)."""
    pieces = signature.split(".")
    return pieces[1] if len(pieces) == 3 else ""


def _verify_hub(parts: LinkParts, keys: KeyRing) -> VerifiedLink:
    pieces = parts.signature.split(".")
    if len(pieces) == 3:
        key_id, nonce, mac = pieces
        if not _NONCE_RE.fullmatch(nonce):
            raise InvalidLink
    elif len(pieces) == 2:
        (key_id, mac), nonce = pieces, None  # issued before nonces: verifies exactly as it did then
    else:
        raise InvalidLink
    secret = keys.secret(key_id)
    if secret is None or not _HUB_MAC_RE.fullmatch(mac):
        raise InvalidLink
    expected = _hub_mac(secret, key_id, parts.customer, parts.expiry, parts.path, nonce)
    if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii")):
        raise InvalidLink
    # Only authentic text reaches here; a malformed field is still refused, never trusted.
    if not _CUSTOMER_RE.fullmatch(parts.customer) or not _HUB_EXPIRY_RE.fullmatch(parts.expiry):
        raise InvalidLink
    try:
        expires_at = datetime.fromisoformat(parts.expiry)
    except ValueError:
        raise InvalidLink from None
    return VerifiedLink(
        "hub", key_id, parts.signature, parts.customer, parts.expiry, expires_at, parts.path, nonce or ""
    )


# --- The legacy format ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegacyConfig:
    secret: str
    zone: ZoneInfo


def legacy_signature(secret: str, customer: str, expiry: str, path: str) -> str:
    """Exactly the old tool: base64 of the *hex text* of HMAC-SHA1, URL-safe swaps, first 12 characters."""
    hex_text = hmac.new(secret.encode(), (customer + expiry + path).encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(hex_text.encode("ascii")).decode("ascii").translate(_LEGACY_TRANSLATION)[:12]


def parse_legacy_expiry(expiry: str, zone: ZoneInfo) -> datetime:
    """``YYYY-MM-DDTHH:MM`` read in ``zone`` (seconds 0) → an aware UTC datetime; ValueError when malformed."""
    if not _LEGACY_EXPIRY_RE.fullmatch(expiry):
        raise ValueError(f"{expiry!r} is not YYYY-MM-DDTHH:MM")
    local = datetime.fromisoformat(expiry)  # the pattern above keeps it to exactly this form
    return local.replace(tzinfo=zone).astimezone(UTC)


def format_legacy_expiry(expires_at: datetime, zone: ZoneInfo) -> str:
    return expires_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def check_legacy_customer(customer: str) -> None:
    """Refuse a customer the legacy format cannot carry unambiguously (ValueError says why).

    The signed message is customer + expiry + path with nothing between them. A customer holding an expiry-like
    text, or just a ``:``, would let someone cut the same signed bytes into a link with another expiry or file.
    """
    if not customer:
        raise ValueError("a legacy link needs a customer id")
    if _LEGACY_EXPIRY_RE.search(customer):
        raise ValueError(
            f"customer id {customer!r} contains a date like YYYY-MM-DDTHH:MM: the legacy format could not tell it "
            "from the expiry"
        )
    if ":" in customer or "/" in customer:
        raise ValueError(f"customer id {customer!r} contains ':' or '/', which legacy links cannot carry")


def sign_legacy_link(*, legacy: LegacyConfig, customer: str, expiry: str, path: str) -> LinkParts:
    """A link the old server accepts (for operators still running it side by side)."""
    check_legacy_customer(customer)
    parse_legacy_expiry(expiry, legacy.zone)
    return LinkParts(legacy_signature(legacy.secret, customer, expiry, path), customer, expiry, path)


def _verify_legacy(parts: LinkParts, legacy: LegacyConfig) -> VerifiedLink:
    if not _LEGACY_SIGNATURE_RE.fullmatch(parts.signature):
        raise InvalidLink
    # Before the MAC: only the one cut of the signed bytes where the expiry has exactly its shape and the
    # customer no ':' is accepted, so the same signature cannot be re-read with other fields.
    if not _LEGACY_EXPIRY_RE.fullmatch(parts.expiry) or ":" in parts.customer or "/" in parts.customer:
        raise InvalidLink
    expected = legacy_signature(legacy.secret, parts.customer, parts.expiry, parts.path)
    # The old tool compared plainly; a constant-time compare costs nothing and leaks nothing.
    if not hmac.compare_digest(expected.encode("ascii"), parts.signature.encode("ascii")):
        raise InvalidLink
    try:
        expires_at = parse_legacy_expiry(parts.expiry, legacy.zone)
    except ValueError:
        raise InvalidLink from None
    return VerifiedLink("legacy", "", parts.signature, parts.customer, parts.expiry, expires_at, parts.path)


def verify_link(parts: LinkParts, *, keys: KeyRing, legacy: LegacyConfig | None) -> VerifiedLink:
    """The authentic link behind ``parts``, or :class:`InvalidLink`. Legacy links verify only with ``legacy``."""
    if not parts.signature.isascii():
        raise InvalidLink
    if "." in parts.signature:
        return _verify_hub(parts, keys)
    if legacy is not None:
        return _verify_legacy(parts, legacy)
    raise InvalidLink


# --- Paths ------------------------------------------------------------------------------------------------


class UnsafePath(ValueError):
    """A relative path that could leave the downloads root, or is not a plain relative path at all."""


def check_relative_path(path: str) -> None:
    """Refuse anything but a plain relative path of named segments (before touching the file system)."""
    if not path or len(path) > MAX_PATH_LENGTH:
        raise UnsafePath("empty or over-long path")
    if _UNSAFE_CHARACTER_RE.search(path):
        raise UnsafePath("NUL, backslash or control character in path")
    if path.startswith("/"):
        raise UnsafePath("absolute path")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafePath("empty, '.' or '..' segment")


def resolve_under_root(root: Path | str, path: str) -> Path:
    """The real file ``path`` names under ``root``, after following symlinks; UnsafePath if it would leave it.

    Symlinks that stay inside the root are followed; one pointing outside it is refused, even in a link
    whose signature is correct.
    """
    return resolve_under_real_root(os.path.realpath(root), path)


def resolve_under_real_root(real_root: str, path: str) -> Path:
    """:func:`resolve_under_root` for a root already resolved (the download path resolves it once)."""
    check_relative_path(path)
    try:
        real = os.path.realpath(os.path.join(real_root, path))
    except (OSError, ValueError):
        raise UnsafePath("unresolvable path") from None
    if os.path.commonpath((real_root, real)) != real_root or real == real_root:
        raise UnsafePath("path leaves the downloads root")
    return Path(real)


def stat_under_real_root(real_root: str, path: str) -> tuple[str, str, os.stat_result]:
    """The real file ``path`` names under ``real_root`` (resolved already), its path relative to the root, and its
    ``lstat``/``stat``; UnsafePath if it would leave the root, OSError if something on the way is missing.

    The same answer as :func:`resolve_under_real_root` followed by ``os.stat``, for the download path: one
    ``lstat`` per segment of ``path`` instead of ``realpath``'s walk over every component of the root as well
    (a tenth of the time: docs/benchmarks.md). The root's own components were resolved at start-up; as soon as a
    segment under it is a symlink, the whole path is resolved with ``realpath`` and checked as before.
    """
    check_relative_path(path)
    current = real_root.rstrip("/")  # "/" as the root would otherwise make "//file"
    status = None
    for segment in path.split("/"):
        current = f"{current}/{segment}"
        status = os.lstat(current)
        if stat.S_ISLNK(status.st_mode):
            real = str(resolve_under_real_root(real_root, path))
            return real, real[len(real_root.rstrip("/")) + 1 :], os.stat(real)
    return current, path, status
