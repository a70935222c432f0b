"""The key ring download links are signed and verified with, read from the settings' raw values.

``DOWNLOADS_KEYS`` stays a string in the settings (``hub/settings.py`` names no app); the downloads app turns
it into a :class:`~downloads.signing.KeyRing` here, and checks it once at start-up (``DownloadsConfig.ready``)
so a malformed value stops the hub with a message naming the variable. Unset, the ring is derived from
``SECRET_KEY`` (signs) and each of ``SECRET_KEY_FALLBACKS`` (still verify). See docs/downloads.md.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from downloads.signing import KeyRing, derived_key_ring, parse_key_ring

#: The settings the ring is made from: changing one (tests, ``override_settings``) makes it again.
_SOURCES = frozenset({"DOWNLOADS_KEYS", "SECRET_KEY", "SECRET_KEY_FALLBACKS"})


def key_ring_from(keys_text: str, *, secret_key: str, fallbacks: tuple[str, ...] | list[str] = ()) -> KeyRing:
    """``DOWNLOADS_KEYS``'s text (``kid2:base64secret,kid1:oldsecret``, the first active) as a ring.

    Empty: the ring derived from ``secret_key`` and ``fallbacks``. Malformed: ImproperlyConfigured naming the
    variable, never echoing the value (it holds secrets).
    """
    if not keys_text or not keys_text.strip():
        return derived_key_ring(secret_key, tuple(fallbacks))
    try:
        return parse_key_ring(keys_text.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"DOWNLOADS_KEYS is not valid: {exc}; expected key_id:base64secret[,key_id:base64secret…], the first active"
        ) from None


@cache
def key_ring() -> KeyRing:
    """The ring of the running hub (made once; again after one of its settings changes)."""
    return key_ring_from(
        settings.DOWNLOADS_KEYS, secret_key=settings.SECRET_KEY, fallbacks=tuple(settings.SECRET_KEY_FALLBACKS)
    )


@receiver(setting_changed)
def _forget_ring(*, setting: str, **_kwargs) -> None:
    if setting in _SOURCES:
        key_ring.cache_clear()
