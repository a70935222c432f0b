"""Reads of the downloads app: the row behind a fetched link, the files an admin can choose, a link's URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from downloads.models import DownloadLink
from downloads.signing import LinkParts, UnsafePath, VerifiedLink, resolve_under_root


@dataclass(frozen=True, slots=True)
class LinkRecord:
    id: int
    revoked: bool
    max_downloads: int | None
    download_count: int


def link_record_for(verified: VerifiedLink) -> LinkRecord | None:
    """The recorded link a verified URL stands for (by signature, then the signed fields), or None."""
    row = (
        DownloadLink.objects.filter(
            signature=verified.signature,
            customer__slug=verified.customer,
            expiry_text=verified.expiry,
            path=verified.path,
        )
        .values_list("id", "revoked_at", "max_downloads", "download_count")
        .first()
    )
    if row is None:
        return None
    return LinkRecord(row[0], row[1] is not None, row[2], row[3])


def downloads_base_url() -> str:
    """Where links start: the dedicated downloads host's root, else the hub's public URL and the prefix."""
    if settings.DOWNLOADS_HOST:
        scheme = urlsplit(settings.HUB_PUBLIC_URL).scheme
        return f"{scheme}://{settings.DOWNLOADS_HOST}/"
    return settings.HUB_PUBLIC_URL + settings.DOWNLOADS_PREFIX


def link_url(link: DownloadLink) -> str:
    return downloads_base_url() + LinkParts(link.signature, link.customer.slug, link.expiry_text, link.path).as_path()


def downloads_root_files(*, limit: int = 5000) -> list[str]:
    """Relative paths of the regular files under DOWNLOADS_ROOT (symlinks only when they stay inside), sorted."""
    root = settings.DOWNLOADS_ROOT
    found: list[str] = []
    if not os.path.isdir(root):
        return found
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            relative = os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/")
            try:
                if not resolve_under_root(root, relative).is_file():
                    continue
            except UnsafePath:
                continue
            found.append(relative)
            if len(found) >= limit:
                return sorted(found)
    return sorted(found)
