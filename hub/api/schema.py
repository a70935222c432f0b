"""The OpenAPI document's share of the conventions: ``?fields=``, the error body, no ``.json`` twins."""

from __future__ import annotations

from drf_spectacular.contrib.django_oauth_toolkit import DjangoOAuthToolkitScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

from hub.api.errors import ERROR_KINDS
from hub.api.permissions import ScopedPermission, required_scope
from hub.api.serializers import FIELDS_PARAM, SparseFieldsMixin

ERROR_COMPONENT = "Error"
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["message", "more_info"],
    "properties": {
        "message": {"type": "string", "example": "Invalid input — limit: Expected a whole number from 1 to 1000."},
        "more_info": {"type": "string", "format": "uri", "example": "http://127.0.0.1:8000/v1/docs/errors#not-found"},
        "fields": {
            "type": "object",
            "description": "Invalid input only: each field or query parameter with what is wrong.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "response_code": {"type": "integer", "description": "Only with ?suppress_response_code=true."},
    },
}
# Every operation can answer these; others (404 on a detail, 415 on a body) are added where they apply.
_ALWAYS = (400, 401, 403, 406, 500)
_TITLES = {kind.status: kind.title for kind in reversed(ERROR_KINDS)}


class HubAutoSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        serializer_class = getattr(self.view, "serializer_class", None)
        partial = isinstance(serializer_class, type) and issubclass(serializer_class, SparseFieldsMixin)
        if partial and self.method == "GET" and getattr(self.view, "action", None) != "count":
            parameters.append(
                OpenApiParameter(
                    FIELDS_PARAM,
                    str,
                    description="Comma-separated field names: return only those (an unknown name is a 400).",
                )
            )
        return parameters


class HubOAuthScheme(DjangoOAuthToolkitScheme):
    """Each operation lists the scope ``ScopedPermission`` will ask of a token (the stock one knows only DOT's)."""

    priority = 1

    def get_security_requirement(self, auto_schema):
        view = auto_schema.view
        if not any(isinstance(permission, ScopedPermission) for permission in view.get_permissions()):
            return super().get_security_requirement(auto_schema)
        scope = required_scope(view.request, view)
        return {self.name: [scope]} if scope else None


def drop_format_suffix_endpoints(endpoints, **kwargs):
    # DRF's enumerator drops regex suffix routes itself; path()-based ones come through as ``…{format}``.
    return [endpoint for endpoint in endpoints if "{format}" not in endpoint[0]]


def add_error_responses(result, **kwargs):
    """Document the one error body on every operation, so clients can generate a type for it."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = _ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = list(_ALWAYS)
            if "{" in path:
                statuses.append(404)
            if method in ("post", "put", "patch"):
                statuses.append(415)
            for status in sorted(statuses):
                operation.setdefault("responses", {}).setdefault(
                    str(status), {"description": _TITLES[status], "content": reference}
                )
    return result
