"""Filters behind ``?``, shared by the list and its ``/count``.

A view opts in with class attributes:

* ``time_range_field = "occurred_at"`` — ``?since=`` (inclusive) and ``?until=`` (exclusive), parsed by
  ``hub.timefmt.parse_utc``;
* ``filter_fields = {"node": "node__address", "type": "type"}`` — exact matches, query parameter → ORM lookup
  (a list or tuple of names means each is its own lookup).

* ``search_fields = ["name"]`` — ``?q=`` (DRF's SearchFilter), at most ``MAX_SEARCH_LENGTH`` characters.

A value the database cannot compare (a word for a number, a number past the column's range, a bad date) is a
400 naming the parameter: never a query the database fails on with a 500.
"""

from __future__ import annotations

import re

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.db.models.constants import LOOKUP_SEP
from rest_framework import serializers
from rest_framework.filters import BaseFilterBackend, SearchFilter

from hub.api.fields import DATE_EXAMPLE
from hub.timefmt import parse_utc

SINCE_PARAM = "since"
UNTIL_PARAM = "until"
# Words to look for, not documents: and SQLite refuses a LIKE pattern over 50,000 bytes with an error.
MAX_SEARCH_LENGTH = 200
#: The OpenAPI pattern of a query value: no NUL character (ApiMiddleware refuses one before any view runs).
NO_NUL_PATTERN = "^[^\\x00]*$"
#: ``/v1/search?q=`` needs words: at least one character that is not white space (it is stripped).
WORDS_PATTERN = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"


def search_param_schema(*, words_required: bool = False) -> dict:
    """The OpenAPI schema of a search parameter, exactly as ``search_text`` (and the callers' checks) take it."""
    return {
        "type": "string",
        "maxLength": MAX_SEARCH_LENGTH,
        "pattern": WORDS_PATTERN if words_required else NO_NUL_PATTERN,
    }


# A whole number as the API writes one: ASCII digits, an optional minus, no more digits than a 64-bit column.
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,19}")


def shown(raw: str, limit: int = 40) -> str:
    """``raw`` quoted for an error message, cut short: a 5,000-character value is not echoed back whole."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "…")


def search_text(request, name: str) -> str:
    """The free text of ``?name=``, "" when absent; longer than ``MAX_SEARCH_LENGTH`` is a 400 naming it.

    It is only ever compared as text (``icontains``), so any other character may be in it."""
    raw = request.query_params.get(name, "")
    if len(raw) > MAX_SEARCH_LENGTH:
        raise serializers.ValidationError(
            {name: [f"Search for at most {MAX_SEARCH_LENGTH} characters, not {len(raw)}."]}
        )
    return raw


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


def _compared_field(model, lookup: str):
    """The model field ``lookup`` ends on (a foreign key's target column for a relation), None if unknown."""
    field = None
    for part in lookup.split(LOOKUP_SEP):
        if field is not None and field.is_relation:
            model = field.related_model
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None  # a lookup or transform name (__in, __date): the ORM checks it itself
    if field is not None and field.is_relation and not field.many_to_many:
        field = field.target_field
    return field


def _fits_integer_column(field, raw: str, database: str) -> bool:
    """Whether ``raw`` is a whole number the column can hold. Django's own parsing takes int(), which accepts
    fullwidth digits but fails on "²" or on more than 4,300 digits, and the database fails (a 500) on a number
    past the column's range, so the check is done here, the same on every database."""
    ops = connections[database].ops
    internal_type = field.get_internal_type()
    if internal_type not in ops.integer_field_ranges:
        return True  # not an integer column: the field's own validation applies
    if not _WHOLE_NUMBER.fullmatch(raw):
        return False
    low, high = ops.integer_field_range(internal_type)
    value = int(raw)
    return (low is None or value >= low) and (high is None or value <= high)


class ExactFieldFilter(BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        for param, lookup in _lookups(view).items():
            raw = request.query_params.get(param)
            if raw is None:
                continue
            field = _compared_field(queryset.model, lookup)
            try:
                if field is not None and not _fits_integer_column(field, raw, queryset.db):
                    raise ValueError(raw)
                queryset = queryset.filter(**{lookup: raw})
            except (ValueError, TypeError, DjangoValidationError):
                raise serializers.ValidationError(
                    {param: [f"{shown(raw)} is not a valid value for {param}."]}
                ) from None
        return queryset

    def get_schema_operation_parameters(self, view):
        return [
            {"name": param, "required": False, "in": "query", "schema": {"type": "string"}} for param in _lookups(view)
        ]


class HubSearchFilter(SearchFilter):
    """DRF's ``?q=`` over the view's ``search_fields``, its length bounded and its errors naming ``q``."""

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"] = search_param_schema()
        return parameters

    def get_search_terms(self, request):
        search_text(request, self.search_param)
        try:
            return super().get_search_terms(request)
        except serializers.ValidationError as exc:  # DRF's own check (a NUL character) names no parameter
            raise serializers.ValidationError({self.search_param: exc.detail}) from None
