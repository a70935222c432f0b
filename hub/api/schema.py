"""The OpenAPI document's share of the conventions: ``?fields=``, the error body, no ``.json`` twins."""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.urls import reverse
from drf_spectacular.contrib.django_oauth_toolkit import DjangoOAuthToolkitScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from hub.api.errors import ERROR_KINDS
from hub.api.filters import NO_NUL_PATTERN
from hub.api.middleware import MAX_QUERY_VALUE_LENGTH
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
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# Actions whose answer is not the serializer's objects, so ?fields= does not apply: a count, the CSV export.
_WHOLE_ANSWERS = frozenset({"count", "export"})


def _may_be_blank(field) -> bool:
    """Whether the field may hold "": its own allow_blank, or for a read-only field (DRF drops allow_blank from
    those) the model field's ``blank``."""
    if field.allow_blank:
        return True
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if not field.read_only or model is None:
        return False
    try:
        return model._meta.get_field(field.source).blank
    except FieldDoesNotExist:
        return False


def _model_field_is_nullable(field) -> bool:
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or "." in field.source or field.source == "*":
        return False
    try:
        return model._meta.get_field(field.source).null
    except FieldDoesNotExist:
        return False


class HubAutoSchema(AutoSchema):
    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        # ?fields= answers only the fields it names, so in an answer no field is certain to be there; the
        # request's component (COMPONENT_SPLIT_REQUEST) keeps its required fields.
        # Only the answer's own objects: a serializer nested inside one keeps its fields whatever ?fields= says.
        top_level = not getattr(self, "_nesting", 0)
        if direction == "response" and isinstance(serializer, SparseFieldsMixin) and top_level:
            required = schema.pop("required", None)
            if required:
                schema["description"] = (
                    f"Always has {', '.join(required)}, unless ?{FIELDS_PARAM}= names the fields to answer."
                )
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        nested = isinstance(field, serializers.BaseSerializer)
        self._nesting = getattr(self, "_nesting", 0) + nested
        try:
            return super()._map_serializer_field(field, direction, bypass_extensions)
        finally:
            self._nesting -= nested

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        # A read-only field loses the model field's null=True (DRF passes no allow_null to read-only fields), so
        # a relation that may be empty (acknowledged_by, created_by: SET_NULL keys) answers null undocumented.
        if field.read_only and not field.allow_null and _model_field_is_nullable(field):
            meta["nullable"] = True
        return meta

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)  # the step that writes ``format: email``
        # An e-mail field that may be blank answers "" (a user without an address), which is no ``format: email``:
        # the schema allows exactly that one other value, so responses validate and other strings still do not.
        if isinstance(field, serializers.EmailField) and _may_be_blank(field) and schema.get("format") == "email":
            del schema["format"]
            schema["anyOf"] = [{"format": "email"}, {"maxLength": 0}]

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        serializer_class = getattr(self.view, "serializer_class", None)
        partial = isinstance(serializer_class, type) and issubclass(serializer_class, SparseFieldsMixin)
        if partial and self.method == "GET" and getattr(self.view, "action", None) not in _WHOLE_ANSWERS:
            names = list(self._get_serializer().fields)
            parameters.append(
                OpenApiParameter(
                    FIELDS_PARAM,
                    # What SparseFieldsMixin takes: one or more of the answer's own field names, comma-separated.
                    {"type": "array", "items": {"type": "string", "enum": names}, "minItems": 1},
                    style="form",
                    explode=False,
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

    def get_security_definition(self, auto_schema):
        """OpenAPI 3.0 has no flow object for the device grant (RFC 8628) that scripts use, so the scheme keeps
        the flows 3.0 knows and states the device flow twice: in words, and as ``x-device-authorization`` with
        its endpoints and the same scopes, for tools that read extensions."""
        definition = super().get_security_definition(auto_schema)
        scopes = next(iter(definition["flows"].values()), {}).get("scopes", {})
        token_url = reverse("oauth2_provider:token")
        device_url = reverse("oauth2_provider:device-authorization")
        definition["description"] = (
            "Scripts use the OAuth 2.0 device authorization grant (RFC 8628): POST client_id and scope to "
            f"{device_url}, have a person approve the user_code at the verification_uri, then poll {token_url} "
            f"with grant_type={DEVICE_GRANT_TYPE} and the device_code. The authorization-code flow is listed "
            "because OpenAPI 3.0 has no device flow object; see x-device-authorization."
        )
        definition["x-device-authorization"] = {
            "grantType": DEVICE_GRANT_TYPE,
            "deviceAuthorizationUrl": device_url,
            "tokenUrl": token_url,
            "refreshUrl": token_url,
            "scopes": scopes,
        }
        return definition


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


def bound_query_parameters(result, **kwargs):
    """Every free-text query parameter says what ApiMiddleware and the parsers take: at most 1,000 characters
    and no NUL (a search, ``q``, is bounded tighter where it is declared), so the schema is never looser than
    the server."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") != "query" or schema.get("type") != "string" or "enum" in schema:
                    continue
                schema.setdefault("maxLength", MAX_QUERY_VALUE_LENGTH)
                if "format" not in schema:
                    schema.setdefault("pattern", NO_NUL_PATTERN)
    return result
