"""``?limit=&offset=`` with the total and next/previous links; a bad value is a 400, never silently clamped."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# Beyond any list the hub keeps, and inside a 32-bit OFFSET for every database.
MAX_OFFSET = 2**31 - 1


def bounded_int_param(request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only (no sign, space or exponent), and no 5,000-digit number ever reaching int().
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not minimum <= int(raw) <= maximum:
        raise serializers.ValidationError(
            {name: [f"Expected a whole number from {minimum} to {maximum}, not {raw!r}."]}
        )
    return int(raw)


class HubPagination(LimitOffsetPagination):
    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def get_limit(self, request) -> int:
        return bounded_int_param(
            request, self.limit_query_param, default=self.default_limit, minimum=1, maximum=MAX_LIMIT
        )

    def get_offset(self, request) -> int:
        return bounded_int_param(request, self.offset_query_param, default=0, minimum=0, maximum=MAX_OFFSET)

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "total": self.count,
                "limit": self.limit,
                "offset": self.offset,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["total", "limit", "offset", "next", "previous", "results"],
            "properties": {
                "total": {"type": "integer", "example": 123},
                "limit": {"type": "integer", "example": DEFAULT_LIMIT},
                "offset": {"type": "integer", "example": 0},
                "next": link,
                "previous": link,
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})
            else:
                parameter["schema"].update({"minimum": 0, "maximum": MAX_OFFSET, "default": 0})
        return parameters
