"""The nonce migration keeps every issued URL: rows made before it, duplicates included, stay and still serve."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.downloads.conftest import fetch
from tests.downloads.test_signing import PRE_NONCE_VECTOR

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BEFORE = [("downloads", "0001_initial")]
AFTER = [("downloads", "0002_link_nonce_and_counted_downloads")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_rows_issued_before_the_nonce_keep_their_urls_duplicates_included(make_app, downloads_root):
    old_apps = _migrate(BEFORE)
    customer = old_apps.get_model("downloads", "Customer").objects.create(slug="acme", name="ACME")
    link_model = old_apps.get_model("downloads", "DownloadLink")
    signature, _, expiry, path = PRE_NONCE_VECTOR
    rows = [
        link_model.objects.create(
            customer=customer,
            path=path,
            expires_at=datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC),
            format="hub",
            key_id="k2",
            signature=signature,
            expiry_text=expiry,
            created_at=datetime(2026, 11, 30, tzinfo=UTC),
        )
        for _ in range(2)
    ]
    try:
        new_apps = _migrate(AFTER)
        migrated = new_apps.get_model("downloads", "DownloadLink").objects.order_by("id")
        assert [(row.id, row.signature, row.expiry_text, row.nonce) for row in migrated] == [
            (row.id, signature, expiry, "") for row in rows
        ]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    response = fetch(make_app(), "/dl/" + "/".join(PRE_NONCE_VECTOR))
    assert (response.status, response.body) == (200, b"hello\n")
