"""Migration 0005 fills the customers' new e-mail field from ``contact`` where it is one address, and lists the rest."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BEFORE = [("downloads", "0004_customer_email_link_sends_access_log")]
AFTER = [("downloads", "0005_customer_email_from_contact")]

CONTACTS = {
    "plain": ("bob@example.org", "bob@example.org"),
    "named": ("  Bob Builder <bob@builder.example>  ", "bob@builder.example"),
    "two": ("bob@example.org, alice@example.org", ""),
    "phone": ("+34 600 123 456", ""),
    "mixed": ("bob@example.org (mornings only)", ""),
    "broken": ("bob@@example", ""),
    "empty": ("", ""),
}


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_a_lone_address_is_copied_and_every_other_contact_is_listed(capsys):
    old_apps = _migrate(BEFORE)
    customer_model = old_apps.get_model("downloads", "Customer")
    for slug, (contact, _) in CONTACTS.items():
        customer_model.objects.create(slug=slug, name=slug.title(), contact=contact)
    customer_model.objects.create(slug="kept", name="Kept", contact="new@example.org", email="old@example.org")
    capsys.readouterr()
    try:
        new_apps = _migrate(AFTER)
        output = capsys.readouterr().out
        migrated = {
            row.slug: (row.contact, row.email) for row in new_apps.get_model("downloads", "Customer").objects.all()
        }
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    for slug, (contact, email) in CONTACTS.items():
        assert migrated[slug] == (contact, email), slug  # contact itself never changes
    assert migrated["kept"] == ("new@example.org", "old@example.org")  # an e-mail already set is not overwritten
    assert "downloads.0005: 5 customer contact(s) not copied into e-mail; fill these in by hand:" in output
    assert (
        "    two: 'bob@example.org, alice@example.org' (more than one address, or an address among other text)"
        in output
    )
    assert "    phone: '+34 600 123 456' (no e-mail address in it)" in output
    assert "    mixed: 'bob@example.org (mornings only)' (an address among other text)" in output
    assert "    broken: 'bob@@example'" in output
    assert "    kept: 'new@example.org' (already has an e-mail)" in output
    for copied_or_empty in ("plain:", "named:", "empty:"):
        assert copied_or_empty not in output
