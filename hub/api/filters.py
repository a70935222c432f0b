"""Filters behind ``?``, shared by the list and its ``/count``.

A view opts in with class attributes:

* ``time_range_field = "occurred_at"`` — ``?since=`` (inclusive) and ``?until=`` (exclusive), parsed by
  ``hub.timefmt.parse_utc``;
* ``filter_fields = {"node": "node__address", "type": "type"}`` — exact matches, query parameter → ORM lookup
  (a list or tuple of names means each is its own lookup).

A value the database cannot compare (a word for a number, a bad date) is a 400 naming the parameter.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.filters import BaseFilterBackend

from hub.api.fields import DATE_EXAMPLE
from hub.timefmt import parse_utc

SINCE_PARAM = "since"
UNTIL_PARAM = "until"


def parse_time_param(request, name: str):
    """The parameter ``name`` as an aware UTC datetime, None when absent; a malformed one is a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_utc(raw)
    except ValueError:
        raise serializers.ValidationError(
            {name: [f"Expected an ISO 8601 time with its zone, such as {DATE_EXAMPLE}, not {raw!r}."]}
        ) from None


class TimeRangeFilter(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        field = getattr(view, "time_range_field", None)
        if not field:
            return queryset
        since = parse_time_param(request, SINCE_PARAM)
        until = parse_time_param(request, UNTIL_PARAM)
        if since is not None:
            queryset = queryset.filter(**{f"{field}__gte": since})
        if until is not None:
            queryset = queryset.filter(**{f"{field}__lt": until})
        return queryset

    def get_schema_operation_parameters(self, view):
        if not getattr(view, "time_range_field", None):
            return []
        return [
            {
                "name": name,
                "required": False,
                "in": "query",
                "description": f"{view.time_range_field} {relation} this time (ISO 8601 UTC, e.g. {DATE_EXAMPLE})",
                "schema": {"type": "string", "format": "date-time"},
            }
            for name, relation in ((SINCE_PARAM, "at or after"), (UNTIL_PARAM, "strictly before"))
        ]


def _lookups(view) -> dict[str, str]:
    declared = getattr(view, "filter_fields", None) or {}
    return dict(declared) if isinstance(declared, dict) else {name: name for name in declared}


class ExactFieldFilter(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        for param, lookup in _lookups(view).items():
            raw = request.query_params.get(param)
            if raw is None:
                continue
            try:
                queryset = queryset.filter(**{lookup: raw})
            except (ValueError, TypeError, DjangoValidationError):
                raise serializers.ValidationError({param: [f"{raw!r} is not a valid value for {param}."]}) from None
        return queryset

    def get_schema_operation_parameters(self, view):
        return [
            {"name": param, "required": False, "in": "query", "schema": {"type": "string"}} for param in _lookups(view)
        ]
