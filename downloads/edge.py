"""Edge markers: the links nginx may serve by itself, written where its njs check (deploy/njs/edge.js) reads them.

"Verify at the edge, govern in the hub": for every link nginx may send without asking the hub — recorded,
authentic under today's keys, not revoked, not capped, not expired, its file a regular file under the root — the
hub keeps one small file in ``DOWNLOADS_EDGE_DIR``, named by the link's signature (:func:`marker_text`). It binds
the rest of the URL exactly (customer, expiry text, path), says until when (epoch seconds) and which file and link
it is. No
marker, and nginx hands the request to the hub as before. No key ever leaves the hub: it checked the signature
when it wrote the marker. docs/downloads.md#served-at-the-edge-nginx-and-njs has the whole design.

Every write is a temp file renamed into place, so nginx never reads half a marker. A revocation or deletion
removes the marker when its transaction commits (and once before, which is always safe); a marker is written
only after the link's row is committed and is removed again if the row has meanwhile stopped qualifying, so a
race with a revocation in another process never leaves a marker behind. ``manage.py edge_sync`` (compose's
``init``) rebuilds the folder from the database: markers written for every qualifying link, stale ones removed.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from downloads.asgi import content_disposition
from downloads.models import DownloadLink
from downloads.signing import InvalidLink, LinkParts, UnsafePath, stat_under_real_root, verify_link

logger = logging.getLogger(__name__)

# deploy/njs/edge.js never reads a name starting with ".": a temp file can never be taken for a marker.
_TEMP_PREFIX = ".tmp-"


def edge_dir() -> str:
    """The markers' folder, "" when the edge is off."""
    return str(settings.DOWNLOADS_EDGE_DIR or "")


def _marker_name(signature: str) -> str | None:
    """The marker's file name for ``signature``, None when the signature could not name a file safely."""
    if not signature or signature[0] == "." or "/" in signature or "\x00" in signature or len(signature) > 64:
        return None
    return signature


def marker_for(link: DownloadLink, *, now: datetime | None = None, shared: bool = False) -> dict | None:
    """What nginx needs to serve ``link`` by itself, or None when the hub must answer its fetches.

    ``shared``: another recorded link has the same URL (legacy links, hub links issued before nonces); such a
    fetch must honour every row behind it, which only the hub can do.
    """
    from downloads.keys import key_ring
    from downloads.services import legacy_config  # services import this module

    now = now or timezone.now()
    if shared or link.revoked_at is not None or link.max_downloads is not None or link.expires_at <= now:
        return None
    if _marker_name(link.signature) is None:
        return None
    parts = LinkParts(link.signature, link.customer.slug, link.expiry_text, link.path)
    try:
        # The hub's own verdict for this URL today: a key dropped from DOWNLOADS_KEYS, or a legacy secret unset or
        # changed, takes the link off the edge as it makes the hub refuse it.
        verified = verify_link(parts, keys=key_ring(), legacy=legacy_config())
        _real, relative, status = stat_under_real_root(os.path.realpath(settings.DOWNLOADS_ROOT), link.path)
    except (InvalidLink, UnsafePath, OSError):
        return None
    if not stat.S_ISREG(status.st_mode) or verified.expires_at <= now:
        return None
    return {
        "c": link.customer.slug,
        "e": link.expiry_text,
        "p": link.path,
        "x": int(verified.expires_at.timestamp()),
        # The real file under the root (a symlink inside it already followed): nginx follows none itself.
        "f": relative,
        "id": link.pk,
        "d": content_disposition(link.path).decode("ascii"),
    }


def marker_text(marker: dict) -> bytes:
    """The marker file's bytes: five lines nginx reads without a JSON parser (a tenth less CPU per request).

    ``<customer>/<expiry>/<path>`` exactly as the URL carries them after the signature (decoded), the expiry in
    epoch seconds, the link id, the file under the root, the ``Content-Disposition``. No field can hold a newline:
    customer ids are ``[a-z0-9_-]``, expiry texts fixed, paths have no control characters.
    """
    lines = (
        f"{marker['c']}/{marker['e']}/{marker['p']}",
        str(marker["x"]),
        str(marker["id"]),
        marker["f"],
        marker["d"],
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def _write(folder: str, name: str, marker: dict) -> None:
    text = marker_text(marker)
    temp = os.path.join(folder, f"{_TEMP_PREFIX}{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fchmod(fd, 0o644)  # readable by nginx's user whatever this process's umask
        os.write(fd, text)
    finally:
        os.close(fd)
    os.replace(temp, os.path.join(folder, name))  # atomic: nginx reads the old marker or the new one


class EdgeUnavailable(RuntimeError):
    """The markers' folder cannot be changed: nginx could go on serving a link the hub means to stop, so the
    revocation or deletion asked for is refused (nothing recorded) with a message saying what to fix."""


def _remove(folder: str, name: str) -> None:
    try:
        os.unlink(os.path.join(folder, name))
    except FileNotFoundError:
        pass
    except OSError as error:
        raise EdgeUnavailable(
            f"The edge markers folder {folder} (DOWNLOADS_EDGE_DIR) cannot be changed ({error.strerror}), so nginx "
            "could go on serving this link: nothing was revoked or deleted. Make the folder writable by the hub "
            "and try again."
        ) from error


def _remove_logged(folder: str, name: str) -> None:
    try:
        _remove(folder, name)
    except EdgeUnavailable:
        # After the commit nothing can be undone; the removal before it succeeded, so only a marker a racing
        # publish wrote meanwhile can be left, and that publish removes it itself when it re-reads the row.
        logger.exception("downloads edge: could not remove the marker %s after the commit", name)


def _still_marked(signatures: Iterable[str], *, now: datetime) -> set[str]:
    """Of ``signatures``, those whose links qualify for a marker right now (read afresh from the database)."""
    wanted = list(signatures)
    rows: dict[str, list[DownloadLink]] = {}
    for start in range(0, len(wanted), 500):  # SQLite's limit on a statement's parameters
        chunk = DownloadLink.objects.filter(signature__in=wanted[start : start + 500]).select_related("customer")
        for link in chunk:
            rows.setdefault(link.signature, []).append(link)
    return {
        signature for signature, links in rows.items() if len(links) == 1 and marker_for(links[0], now=now) is not None
    }


def link_publish(link: DownloadLink) -> bool:
    """Write ``link``'s marker (its row committed) when nginx may serve it; True when one was written."""
    folder = edge_dir()
    if not folder:
        return False
    shared = DownloadLink.objects.filter(signature=link.signature).exclude(pk=link.pk).exists()
    marker = marker_for(link, shared=shared)
    name = _marker_name(link.signature)
    if marker is None or name is None:
        return False
    os.makedirs(folder, exist_ok=True)
    _write(folder, name, marker)
    # Re-read after writing: a revocation committed meanwhile by another process may have removed the marker
    # before it was written. Whichever order the two took, one of them removes it now.
    if link.signature not in _still_marked([link.signature], now=timezone.now()):
        _remove(folder, name)
        return False
    return True


def link_publish_on_commit(link: DownloadLink) -> None:
    """:func:`link_publish` once the current transaction commits (never for a row that was rolled back)."""
    if edge_dir():
        transaction.on_commit(lambda: _publish_logged(link))


def _publish_logged(link: DownloadLink) -> None:
    try:
        link_publish(link)
    except OSError:
        # The link still works through the hub; edge_sync writes the marker on the next start.
        logger.exception("downloads edge: could not write the marker of link %s", link.pk)


def signature_withdraw(signature: str) -> None:
    """Take the link(s) with ``signature`` off the edge now and again when the transaction commits.

    Now: nginx hands the URL to the hub from this instant, which answers from the database (safe whatever the
    transaction's fate). After the commit: a marker written meanwhile by a racing :func:`link_publish` is gone
    too. A rolled-back revocation leaves the link to the hub until ``edge_sync`` writes its marker again.
    """
    folder, name = edge_dir(), _marker_name(signature)
    if not folder or name is None:
        return
    _remove(folder, name)  # EdgeUnavailable here rolls the revocation or deletion back
    transaction.on_commit(lambda: _remove_logged(folder, name))


def edge_sync(*, now: datetime | None = None) -> tuple[int, int]:
    """Make the folder hold exactly the markers of the links nginx may serve now; returns (written, removed).

    Run at every start (compose's ``init``): a marker left from before a crash, a revocation whose removal was
    lost, an expired link, a key dropped from DOWNLOADS_KEYS — all are settled here.
    """
    folder = edge_dir()
    if not folder:
        return 0, 0
    now = now or timezone.now()
    os.makedirs(folder, exist_ok=True)
    by_signature: dict[str, list[DownloadLink]] = {}
    candidates = DownloadLink.objects.filter(revoked_at__isnull=True, max_downloads__isnull=True, expires_at__gt=now)
    for link in candidates.select_related("customer").iterator(chunk_size=2000):
        by_signature.setdefault(link.signature, []).append(link)
    # Rows without a nonce may share a URL (legacy links, hub links from before nonces); a fetch of such a URL
    # must honour every row behind it, which only the hub does.
    shared = set(
        DownloadLink.objects.filter(nonce="")
        .values("signature")
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)
        .values_list("signature", flat=True)
    )
    wanted: dict[str, dict] = {}
    for signature, links in by_signature.items():
        if len(links) != 1 or signature in shared:
            continue
        marker = marker_for(links[0], now=now)
        if marker is not None:
            wanted[signature] = marker
    written = removed = 0
    for name, marker in wanted.items():
        if _current(folder, name) != marker_text(marker):
            _write(folder, name, marker)
            written += 1
    for entry in os.scandir(folder):
        if entry.name in wanted:
            continue
        if entry.name.startswith(_TEMP_PREFIX) and _recent(entry):
            continue  # another process is writing it right now
        _remove(folder, entry.name)
        removed += 1
    # Links revoked or deleted while this ran: their withdrawal may have come before the write above.
    gone = set(wanted) - _still_marked(wanted, now=timezone.now())
    for name in gone:
        _remove(folder, name)
    return written - len(gone), removed


def _current(folder: str, name: str) -> bytes | None:
    try:
        with open(os.path.join(folder, name), "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _recent(entry: os.DirEntry) -> bool:
    try:
        return timezone.now().timestamp() - entry.stat(follow_symlinks=False).st_mtime < 60
    except OSError:
        return False
