"""The one error shape of ``/v1/``: ``{"message": "...", "more_info": "<URL of the docs page for this error>"}``.

Validation errors add ``"fields"``, naming each field (or query parameter) with its problems. DRF's errors
come through ``api_exception_handler``; everything else under ``/v1/`` (unknown paths, unhandled exceptions,
Django's own 4xx pages) is rewritten by ``hub.api.middleware.ApiMiddleware`` with ``error_response``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, JsonResponse
from django.urls import NoReverseMatch, reverse
from rest_framework import exceptions


@dataclass(frozen=True)
class ErrorKind:
    anchor: str
    status: int
    title: str
    advice: str


ERROR_KINDS: tuple[ErrorKind, ...] = (
    ErrorKind(
        "invalid-input",
        400,
        "Invalid input",
        "A body field or a query parameter (limit, offset, fields, since, until, q, a filter) has a value the API "
        "cannot use: a word or another script's digits for a number, a number past its range, a bad date, a NUL "
        "character, a search over 200 characters or any query value over 1,000. The body's fields names each one "
        "with what is wrong; fix them and send the request again.",
    ),
    ErrorKind(
        "malformed-body",
        400,
        "Malformed body",
        "The request body is not valid JSON. Send a JSON document with Content-Type: application/json.",
    ),
    ErrorKind(
        "bad-request",
        400,
        "Bad request",
        "The request cannot be understood as sent (for example an unknown X-HTTP-Method-Override).",
    ),
    ErrorKind(
        "not-authenticated",
        401,
        "Not authenticated",
        "Send an OAuth 2.0 access token (Authorization: Bearer <token>) or sign in to the hub's pages.",
    ),
    ErrorKind(
        "invalid-token",
        401,
        "Invalid or expired token",
        "The access token is unknown, revoked or expired. Get a new one from the token endpoint /o/token/ "
        "(with your refresh token, or through the device flow again) and retry.",
    ),
    ErrorKind(
        "permission-denied",
        403,
        "Permission denied",
        "The signed-in user may not do this (for example it needs staff, or the hub.send_commands permission), "
        "or a session request lacks its CSRF token.",
    ),
    ErrorKind(
        "insufficient-scope",
        403,
        "Insufficient scope",
        "The access token lacks the scope this request needs (the message names it). Ask for a token with that "
        "scope, or the umbrella read / write scope.",
    ),
    ErrorKind("not-found", 404, "Not found", "No resource lives at this URL. Check the path and the id."),
    ErrorKind(
        "method-not-allowed",
        405,
        "Method not allowed",
        "This resource does not accept the HTTP method used; the Allow header lists those it accepts.",
    ),
    ErrorKind(
        "not-acceptable",
        406,
        "Not acceptable",
        "The API answers JSON. Send Accept: application/json (or */*), or use the .json suffix.",
    ),
    ErrorKind(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "The request body must be JSON, sent with Content-Type: application/json.",
    ),
    ErrorKind(
        "conflict",
        409,
        "Conflict",
        "The request is valid but the resource's state refuses it: for example a raw command on a relay that heats "
        "a room (its thermostat switches it; the message names the room). Change the room's target or mode "
        "instead, or have staff unassign the heater from the room.",
    ),
    ErrorKind(
        "too-large",
        413,
        "Body too large",
        "The request body is larger than the hub accepts (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default).",
    ),
    ErrorKind("throttled", 429, "Too many requests", "Slow down; the Retry-After header says when to try again."),
    ErrorKind(
        "server-error",
        500,
        "Internal error",
        "The hub failed while answering. The error is logged; retry later and tell the hub's admin if it persists.",
    ),
)
KINDS_BY_ANCHOR = {kind.anchor: kind for kind in ERROR_KINDS}
_DEFAULT_ANCHOR_BY_STATUS = {
    400: "bad-request",
    401: "not-authenticated",
    403: "permission-denied",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    429: "throttled",
    500: "server-error",
}
ERRORS_DOCS_FALLBACK_PATH = "/v1/docs/errors"
NON_FIELD_ERRORS = "non_field_errors"


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"The access token lacks the scope {scope!r} (or its umbrella).")
        self.scope = scope


class Conflict(exceptions.APIException):
    """409: the input is valid, the resource's state refuses it (the message says why and what to do instead)."""

    status_code = 409
    default_detail = "The resource's state refuses this request."
    default_code = "conflict"


def anchor_for_status(status: int) -> str:
    if status in _DEFAULT_ANCHOR_BY_STATUS:
        return _DEFAULT_ANCHOR_BY_STATUS[status]
    return "server-error" if status >= 500 else "bad-request"


def more_info_url(request: HttpRequest | None, anchor: str) -> str:
    try:
        path = reverse("api-errors-docs")
    except NoReverseMatch:
        path = ERRORS_DOCS_FALLBACK_PATH
    location = f"{path}#{anchor}"
    if request is None:
        return location
    try:
        return request.build_absolute_uri(location)
    except DisallowedHost:  # the error being described may be that very Host header
        return location


def error_body(request: HttpRequest | None, *, anchor: str, message: str, fields: dict | None = None) -> dict:
    body = {"message": message, "more_info": more_info_url(request, anchor)}
    if fields:
        body["fields"] = fields
    return body


def error_response(request: HttpRequest, *, status: int, message: str | None = None, anchor: str | None = None):
    """A plain Django JSON response in the error shape, for errors that never reached a DRF view."""
    anchor = anchor or anchor_for_status(status)
    kind = KINDS_BY_ANCHOR[anchor]
    return JsonResponse(error_body(request, anchor=anchor, message=message or kind.title), status=status)


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field.sub": ["message", ...]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            for field, messages in _flatten(value, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix: [str(item) for item in detail]} if detail else {}
        flat = {}
        for index, item in enumerate(detail):
            name = f"{prefix}.{index}" if prefix else str(index)
            for field, messages in _flatten(item, name).items():
                flat.setdefault(field, []).extend(messages)
        return flat
    return {prefix: [str(detail)]}


def _named_fields(detail) -> dict[str, list[str]]:
    flat = _flatten(detail)
    if "" in flat:  # errors about the input as a whole keep DRF's name for them
        flat[NON_FIELD_ERRORS] = flat.pop("")
    return flat


def _validation_message(fields: dict[str, list[str]]) -> str:
    parts = [
        " ".join(messages) if name == NON_FIELD_ERRORS else f"{name}: {' '.join(messages)}"
        for name, messages in fields.items()
    ]
    return "Invalid input — " + "; ".join(parts)


def api_exception_handler(exc, context):
    """DRF's handler, then its answer reshaped into the hub's error body (status and headers kept)."""
    # Imported here: rest_framework.views loads the permission classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: ApiMiddleware logs it and answers 500 in the error shape
    request = context.get("request")
    fields = None
    if isinstance(exc, exceptions.ValidationError):
        fields = _named_fields(exc.detail)
        anchor, message = "invalid-input", _validation_message(fields)
    elif isinstance(exc, exceptions.ParseError):
        anchor, message = "malformed-body", str(exc.detail)
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        oauth2_error = getattr(request, "oauth2_error", None) or {}
        if oauth2_error.get("error") == "invalid_token":
            anchor = "invalid-token"
            message = str(oauth2_error.get("error_description") or KINDS_BY_ANCHOR[anchor].title)
        else:
            anchor, message = anchor_for_status(response.status_code), str(exc.detail)
    elif isinstance(exc, InsufficientScope):
        anchor, message = "insufficient-scope", str(exc.detail)
    else:
        anchor = anchor_for_status(response.status_code)
        # DRF has already turned Django's Http404 / PermissionDenied into its own detail.
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        message = str(detail) if detail else KINDS_BY_ANCHOR[anchor].title
    response.data = error_body(request, anchor=anchor, message=message, fields=fields)
    return response
