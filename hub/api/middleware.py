"""What ``/v1/`` does around every view, DRF's or not.

* ``POST`` with ``X-HTTP-Method-Override`` (or ``?method=``) is treated as PUT, PATCH or DELETE. Any other
  method ignores both: a GET must stay safe for caches, prefetchers and CSRF (docs/api-rules.md §5).
* Any error that did not come out of a DRF view — an unknown path, Django's 405 or CSRF page, an unhandled
  exception — answers the JSON error body instead of an HTML page.
* ``?suppress_response_code=true`` answers 200 and carries the real status as ``"response_code"``.
* A query parameter whose name or value holds a NUL character, or whose value is longer than
  ``MAX_QUERY_VALUE_LENGTH`` characters, is a 400 naming it, before any view runs. PostgreSQL cannot store or
  compare text with NUL in it (the driver raises: a 500), SQLite refuses a LIKE pattern over 50,000 bytes (a
  500 too), and no value the API takes needs either. Anything else is left to the parameter's own parser.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from hub.api.errors import error_body, error_response

API_PREFIX = "/v1/"
OVERRIDABLE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TRUE = frozenset({"true", "1", "yes"})
# Longer than any id, time, filter value or ?fields= list the API takes (a search, ?q=, is bounded tighter).
MAX_QUERY_VALUE_LENGTH = 1000
# Headers a client still needs once an error page is replaced by the JSON body.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "Vary")
# Exceptions Django itself turns into a 4xx page; that page is rewritten on the way out.
_CLIENT_ERRORS = (Http404, PermissionDenied, SuspiciousOperation, BadRequest)

logger = logging.getLogger("django.request")


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX) or request.path_info == API_PREFIX.rstrip("/")


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")


def _set_json_body(response: HttpResponse, body: dict, *, status: int) -> HttpResponse:
    response.content = json.dumps(body).encode()
    response.status_code = status
    response.headers["Content-Type"] = "application/json"
    if response.has_header("Content-Length"):
        response.headers["Content-Length"] = str(len(response.content))
    return response


class ApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _is_api(request):
            return self.get_response(request)
        response = self._refuse_unusable_query(request) or self._override_method(request) or self.get_response(request)
        response = self._error_page_as_json(request, response)
        if request.GET.get("suppress_response_code", "").lower() in _TRUE:
            response = self._suppress_status(response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request) or isinstance(exception, _CLIENT_ERRORS):
            return None
        # Answering here skips Django's own handling, so log and signal as it would (error trackers listen).
        logger.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"status_code": 500, "request": request},
        )
        got_request_exception.send(sender=self.__class__, request=request)
        return error_response(request, status=500)

    @staticmethod
    def _refuse_unusable_query(request: HttpRequest) -> HttpResponse | None:
        fields: dict[str, list[str]] = {}
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                fields[name.replace("\x00", "\\0")] = ["A NUL character is not allowed in a query parameter."]
            elif any(len(value) > MAX_QUERY_VALUE_LENGTH for value in values):
                longest = max(len(value) for value in values)
                fields[name] = [f"At most {MAX_QUERY_VALUE_LENGTH} characters, not {longest}."]
        if not fields:
            return None
        message = "Invalid input — " + "; ".join(f"{name}: {problems[0]}" for name, problems in fields.items())
        return JsonResponse(error_body(request, anchor="invalid-input", message=message, fields=fields), status=400)

    @staticmethod
    def _override_method(request: HttpRequest) -> HttpResponse | None:
        if request.method != "POST":
            return None
        requested = request.headers.get("X-HTTP-Method-Override") or request.GET.get("method")
        if not requested:
            return None
        method = requested.strip().upper()
        if method not in OVERRIDABLE_METHODS:
            return error_response(
                request,
                status=400,
                anchor="bad-request",
                message=f"A POST may be overridden to PUT, PATCH or DELETE only, not {requested!r}.",
            )
        request.method = method
        request.META["REQUEST_METHOD"] = method
        return None

    @staticmethod
    def _error_page_as_json(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code < 400 or response.streaming or _is_json(response):
            return response
        if response.status_code == 404:
            message = f"Nothing lives at {request.path}."
        elif response.status_code == 405:
            message = f"{request.method} is not allowed here; allowed: {response.get('Allow', 'none')}."
        else:
            message = None  # the kind's title
        replacement = error_response(request, status=response.status_code, message=message)
        for header in _KEPT_HEADERS:
            if response.has_header(header):
                replacement.headers[header] = response[header]
        replacement.cookies = response.cookies
        return replacement

    @staticmethod
    def _suppress_status(response: HttpResponse) -> HttpResponse:
        if response.streaming or (response.content and not _is_json(response)):
            return response
        body = json.loads(response.content) if response.content else {}
        if not isinstance(body, dict):
            body = {"data": body}
        body["response_code"] = response.status_code
        return _set_json_body(response, body, status=200)
