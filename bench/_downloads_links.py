"""The downloads bench's links (not a benchmark itself: its name starts with _).

* :func:`hub_links` runs ``python -m bench._downloads_links --child`` on a scratch database: the hub records
  ``count`` links to one file through ``link_create`` (so whatever the hub does for a new link — its event, the
  edge marker when ``DOWNLOADS_EDGE_DIR`` is set — happens as in production), plus one hot link and one link to
  the big file, and prints their URL paths below the prefix as one JSON line.
* :func:`legacy_links` and :func:`secure_link_links` sign the old tool's links and nginx ``secure_link``'s in
  process (neither keeps a record).
* :func:`write_workload` writes wrk's list: every link ``repeat`` times, shuffled with a fixed seed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench._support import run_child

LINK_COUNT = 10_000
REPEAT = 3
EXPIRES_AT = datetime(2099, 1, 1, tzinfo=UTC)
LEGACY_SECRET = "This is just a long string to set a seed"  # the example secret the old tool shipped
LEGACY_EXPIRY = "2099-01-01T00:00"
SECURE_LINK_SECRET = "bench-secure-link-secret"
SECURE_LINK_EXPIRES = int(EXPIRES_AT.timestamp())


def hub_links(*, database_url: str, workdir: str, env: dict[str, str], count: int, small: str, big: str) -> dict:
    """{"links": [path below the prefix, …], "hot": path, "big": path, "seconds": time to record them}."""
    return run_child(
        "bench._downloads_links",
        database_url=database_url,
        workdir=workdir,
        env={
            # run_child's database and mode, not the ones the caller's server environment names
            **{key: value for key, value in env.items() if key not in ("DATABASE_URL", "HUB_VAR_DIR", "HUB_MODE")},
            "BENCH_LINKS": json.dumps({"count": count, "small": small, "big": big}),
        },
        timeout=900,
    )


def child() -> None:
    import time

    from bench._support import setup_django

    setup_django()
    from django.db import transaction

    from downloads.models import Customer
    from downloads.services import customer_create, link_create
    from downloads.signing import LinkParts

    wanted = json.loads(os.environ["BENCH_LINKS"])
    customer = Customer.objects.filter(slug="bench").first() or customer_create(slug="bench")
    started = time.perf_counter()

    def path_of(link) -> str:
        return LinkParts(link.signature, customer.slug, link.expiry_text, link.path).as_path()

    links = []
    # Batches of 500 in a transaction each: one commit per link would take most of the set-up's time.
    for first in range(0, wanted["count"] + 1, 500):
        with transaction.atomic():
            for _ in range(first, min(first + 500, wanted["count"] + 1)):
                links.append(path_of(link_create(customer=customer, path=wanted["small"], expires_at=EXPIRES_AT)))
    big = path_of(link_create(customer=customer, path=wanted["big"], expires_at=EXPIRES_AT))
    print(
        json.dumps(
            {"links": links[:-1], "hot": links[-1], "big": big, "seconds": round(time.perf_counter() - started, 1)}
        )
    )


def legacy_links(*, count: int, path: str) -> list[str]:
    """``count`` old-tool links to ``path``, one customer each (the format has no nonce to tell them apart)."""
    from downloads.signing import legacy_signature

    return [
        f"{legacy_signature(LEGACY_SECRET, customer, LEGACY_EXPIRY, path)}/{customer}/{LEGACY_EXPIRY}/{path}"
        for customer in (f"customer{number}" for number in range(count))
    ]


def secure_link_links(*, count: int, path: str) -> list[str]:
    """``count`` links for nginx's secure_link module: ``<md5>/<expires>/<customer>/<path>``, the MD5 (base64url,
    as the module reads it) over the expiry, the customer and path, and a secret (the bench's nginx location
    has the same expression)."""
    links = []
    for number in range(count):
        customer = f"customer{number}"
        text = f"{SECURE_LINK_EXPIRES}{customer}/{path} {SECURE_LINK_SECRET}"
        digest = base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).rstrip(b"=").decode()
        links.append(f"{digest}/{SECURE_LINK_EXPIRES}/{customer}/{path}")
    return links


def write_workload(file: Path, prefix: str, links: list[str], *, repeat: int = REPEAT, seed: int = 13) -> Path:
    """wrk's list for bench/wrk/links.lua: each of ``links`` ``repeat`` times, shuffled, under ``prefix``."""
    paths = [prefix + link for link in links for _ in range(repeat)]
    random.Random(seed).shuffle(paths)
    file.write_text("\n".join(paths) + "\n")
    return file


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child()
    else:
        sys.exit("run by bench/downloads.py")
