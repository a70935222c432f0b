"""Copy each customer's ``contact`` into the new ``email`` field where it holds exactly one valid address.

``contact`` was free text: an address, a phone number, a name, several addresses. Only a lone address (bare, or
``Name <address>``) is copied; every other non-empty contact is left alone and listed on the migration's output,
so the admin knows whose e-mail to fill in by hand. ``contact`` itself is never changed. Reversing does nothing
(the addresses stay in ``email``).
"""

from email.utils import getaddresses

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import migrations


def single_address(contact: str) -> tuple[str, str]:
    """``(address, "")`` when ``contact`` is exactly one valid address, else ``("", why not)``."""
    text = contact.strip()
    if not text:
        return "", "empty"
    if "@" not in text:
        return "", "no e-mail address in it"
    pairs = [pair for pair in getaddresses([text]) if any(pair)]
    if len(pairs) != 1 or text.count("@") != 1:
        return "", "more than one address, or an address among other text"
    _name, address = pairs[0]
    # getaddresses also reads "bob@example.org call me" as one address: the text must be just it (or <it>).
    if text not in (address, f"<{address}>") and not text.endswith(f"<{address}>"):
        return "", "an address among other text"
    try:
        validate_email(address)
    except ValidationError:
        return "", "not a valid address"
    if len(address) > 254:
        return "", "longer than an e-mail address may be"
    return address, ""


def copy_contact_to_email(apps, schema_editor):
    customer_model = apps.get_model("downloads", "Customer")
    skipped = []
    for customer in customer_model.objects.exclude(contact="").order_by("slug"):
        if customer.email:
            skipped.append((customer.slug, customer.contact, "already has an e-mail"))
            continue
        address, why_not = single_address(customer.contact)
        if not address:
            skipped.append((customer.slug, customer.contact, why_not))
            continue
        customer.email = address
        customer.save(update_fields=["email"])
    if skipped:
        # Migrations have no other channel to the operator than their output.
        print(f"\n  downloads.0005: {len(skipped)} customer contact(s) not copied into e-mail; fill these in by hand:")
        for slug, contact, why_not in skipped:
            print(f"    {slug}: {contact!r} ({why_not})")


class Migration(migrations.Migration):
    dependencies = [("downloads", "0004_customer_email_link_sends_access_log")]

    operations = [migrations.RunPython(copy_contact_to_email, migrations.RunPython.noop, elidable=True)]
