"""Field types the API shares: the hub's date format, and the rule for ids that appear in URLs."""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone
from rest_framework import serializers

from hub.timefmt import format_utc, parse_utc

#: Words the API uses as paths under a resource or at its root; never valid as an id.
RESERVED_IDS = frozenset({"count", "search", "schema", "docs"})
ID_PATTERN = r"[a-z0-9_-]{1,64}"
#: For URL patterns: an id that is not a reserved word.
ID_URL_REGEX = r"(?!(?:" + "|".join(sorted(RESERVED_IDS)) + r")(?:[./]|$))" + ID_PATTERN
_ID_RE = re.compile(ID_PATTERN)
DATE_EXAMPLE = "2026-11-28T07:30:00.000Z"


def validate_resource_id(value: str) -> str:
    """For resources whose id a user chooses (a node's name, a room's slug): docs/api-rules.md §1's id rule."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise serializers.ValidationError("An id is 1 to 64 characters of a-z, 0-9, '_' and '-'.")
    if value in RESERVED_IDS:
        raise serializers.ValidationError(f"{value!r} is a word the API uses as a path; choose another id.")
    return value


class ResourceIdField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)
        self.validators.append(validate_resource_id)


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with milliseconds (``2026-11-28T07:30:00.000Z``) out; any ISO 8601 time with a zone in."""

    default_error_messages = {
        "invalid": f"Expected an ISO 8601 time with its zone, such as {DATE_EXAMPLE}.",
    }

    def to_internal_value(self, value):
        if isinstance(value, datetime):
            return value if timezone.is_aware(value) else self.fail("invalid")
        try:
            return parse_utc(value)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        if not value:
            return None
        if isinstance(value, str):
            value = parse_utc(value)
        return format_utc(value if timezone.is_aware(value) else timezone.make_aware(value))
