"""``create_secure_link <customer_id> <expiration_date> <relative_path/filename>``: the old tool's command line."""

from __future__ import annotations

import re
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from downloads.models import Customer
from downloads.selectors import link_url
from downloads.services import LinkError, customer_create, link_create

_OLD_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def parse_expiry(text: str) -> datetime:
    """The old ``YYYY-MM-DDTHH:MM`` (in DOWNLOADS_LEGACY_TZ) or ISO 8601 with a zone; ValueError otherwise."""
    if _OLD_FORMAT.fullmatch(text):
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=settings.DOWNLOADS_LEGACY_TZ)
        except ValueError:
            raise ValueError(f"{text!r} is not a real date and time") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: use YYYY-MM-DDTHH:MM (read in {settings.DOWNLOADS_LEGACY_TZ.key}) "
            "or ISO 8601 with a zone, e.g. 2026-12-31T18:00:00+01:00"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no zone: add one (Z, +01:00) or use YYYY-MM-DDTHH:MM")
    return parsed


class Command(BaseCommand):
    help = "Create an expiring download link for a customer and print its URL (the old create_secure_link.lua)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("customer_id", help="the customer's id, e.g. acme (an existing customer's)")
        parser.add_argument("expiration_date", help="YYYY-MM-DDTHH:MM (in DOWNLOADS_LEGACY_TZ) or ISO 8601 with a zone")
        parser.add_argument("path", metavar="relative_path/filename", help="relative to DOWNLOADS_ROOT")
        parser.add_argument("--legacy", action="store_true", help="print a link in the old tool's format")
        parser.add_argument("--max-downloads", type=int, default=None, help="stop after this many downloads")
        parser.add_argument("--note", default="", help="a note kept with the link")
        parser.add_argument(
            "--create-customer",
            action="store_true",
            help="create the customer when no customer has this id (the old tool had no customer list)",
        )

    def handle(self, *args, customer_id: str, expiration_date: str, path: str, **options) -> None:
        try:
            expires_at = parse_expiry(expiration_date)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        customer = Customer.objects.filter(slug=customer_id).first()
        if customer is None and not options["create_customer"]:
            # A typo in the id would otherwise make a second customer and hand out a link in its name.
            raise CommandError(
                f"no customer with id {customer_id!r}: add it in the admin (Downloads → Customers) "
                "or run again with --create-customer"
            )
        created = False
        try:
            # One transaction: a link that cannot be made leaves no customer behind either.
            with transaction.atomic():
                if customer is None:
                    try:
                        customer = customer_create(slug=customer_id)
                    except ValidationError as exc:
                        raise CommandError(f"customer id {customer_id!r}: {' '.join(exc.messages)}") from None
                    created = True
                link = link_create(
                    customer=customer,
                    path=path,
                    expires_at=expires_at,
                    max_downloads=options["max_downloads"],
                    note=options["note"],
                    legacy=options["legacy"],
                )
        except LinkError as exc:
            raise CommandError(str(exc)) from None
        if created:
            self.stderr.write(f"created customer {customer_id!r}")
        self.stdout.write(link_url(link))
