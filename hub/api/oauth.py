"""The OAuth 2.0 endpoints under ``/o/``: django-oauth-toolkit's, minus its self-service application pages.

Applications are registered by an admin in the Django admin. Scripts use the device authorization grant
(RFC 8628): they call ``device-authorization/`` and ``token/``; ``device/`` is the page where the signed-in
user approves the code a script shows.

``token/`` is the toolkit's view with the device grant's exchange made safe (see :class:`TokenView`).
"""

from __future__ import annotations

import functools
import hashlib
import json

from django import http
from django.db import transaction
from django.urls import URLPattern
from oauth2_provider import urls as dot_urls
from oauth2_provider import views as dot_views
from oauth2_provider.models import get_access_token_model, get_device_grant_model
from oauthlib.oauth2.rfc8628 import errors as rfc8628_errors

app_name = "oauth2_provider"  # DOT's views reverse their own names in this namespace

DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# The status a device grant takes once its code has been exchanged for tokens. The toolkit has no such state
# (its AUTHORIZED grant stays AUTHORIZED for ever); the column is a plain CharField, so it needs no migration.
CONSUMED = "consumed"


class _Rejected(Exception):
    """Leaves the exchange's transaction, undoing any token written, with this answer."""

    def __init__(self, response: http.HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _oauth_error(error: str, description: str | None = None, *, status: int = 400) -> http.JsonResponse:
    # RFC 6749 section 5.2's error body, as the toolkit's own errors are written.
    body = {"error": error} if description is None else {"error": error, "error_description": description}
    response = http.JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


class TokenView(dot_views.TokenView):
    """django-oauth-toolkit's token endpoint, with the device grant's exchange done here.

    Two faults of the toolkit's ``TokenView.device_flow_token_response``, which came with the device grant in
    django-oauth-toolkit 3.2 (pull request #1539) and are unchanged on its development branch as of this
    writing (no upstream issue or fix for either was found):

    * A request with the device grant but no ``device_code`` read ``request.POST["device_code"]`` and failed
      with a 500 HTML page; it is a 400 ``invalid_request`` (RFC 6749 section 5.2).
    * A device grant stayed AUTHORIZED after its code was exchanged, so the same code could be exchanged again
      and again, each time for a new, independent access and refresh token. A device code is single use
      (RFC 8628 section 3.5 answers with tokens once; RFC 6749 section 5.2 calls a used grant
      ``invalid_grant``). The exchange locks the grant's row, issues the tokens and marks the grant consumed
      in one transaction, so of two simultaneous exchanges exactly one gets tokens; the other waits for that
      commit, reads the grant consumed and gets ``invalid_grant``. (SQLite has no row locks: there the hub's
      IMMEDIATE transactions take the database's write lock first, which serializes the same way.) The code
      is also bound to the client it was issued to: another client's exchange is ``invalid_grant`` too.

    A pending, denied or expired grant and an unknown code get the toolkit's answers, unchanged.
    """

    def post(self, request: http.HttpRequest, *args, **kwargs) -> http.HttpResponse:
        if request.POST.get("grant_type") != DEVICE_GRANT_TYPE:
            return super().post(request, *args, **kwargs)
        device_code = request.POST.get("device_code")
        if not device_code:
            return _oauth_error("invalid_request", "Missing device_code parameter.")
        try:
            with transaction.atomic():
                return self._device_exchange(request, device_code)
        except _Rejected as rejected:
            return rejected.response

    def _device_exchange(self, request: http.HttpRequest, device_code: str) -> http.HttpResponse:
        model = get_device_grant_model()
        grant = model.objects.select_for_update().filter(device_code=device_code).first()
        if grant is None:
            return _oauth_error("device_not_found", status=404)  # the toolkit's answer
        if grant.status == CONSUMED:
            return _oauth_error("invalid_grant", "This device code has already been exchanged for tokens.")
        refusal = {
            model.AUTHORIZATION_PENDING: rfc8628_errors.AuthorizationPendingError,
            model.DENIED: rfc8628_errors.AccessDenied,
            model.EXPIRED: rfc8628_errors.ExpiredTokenError,
        }.get(grant.status)
        if refusal is not None:
            error = refusal()
            return http.HttpResponse(error.json, status=error.status_code, content_type="application/json")
        if grant.status != model.AUTHORIZED:
            return _oauth_error("invalid_grant", f"This device code is {grant.status!r}.")
        _url, headers, body, status = self.create_token_response(request)
        if status != 200:
            # Nothing was issued (a scope the hub lacks, a client that does not authenticate): the grant stays
            # as it was, and the same request fails the same way again.
            return http.JsonResponse(json.loads(body), status=status)
        issued = json.loads(body)
        checksum = hashlib.sha256(issued["access_token"].encode()).hexdigest()
        token = get_access_token_model().objects.select_related("application").get(token_checksum=checksum)
        if token.application.client_id != grant.client_id:
            raise _Rejected(_oauth_error("invalid_grant", "This device code was issued to another client."))
        grant.status = CONSUMED
        grant.save(update_fields=["status"])
        response = http.JsonResponse(issued, status=status)
        for name, value in headers.items():
            response[name] = value
        return response


class DeviceAuthorizationView(dot_views.DeviceAuthorizationView):
    """The toolkit's ``device-authorization/``, with a request it cannot read answered as RFC 8628 says.

    oauthlib's endpoint reads ``request.headers["Content-Type"]`` (``DeviceAuthorizationEndpoint.
    validate_device_authorization_request``), so a POST without that header (``curl -X POST``, an empty body)
    failed with a 500 page before it could say the client_id is missing. Such a request is the 400
    ``invalid_request`` the endpoint means to give (RFC 8628 section 3.1, RFC 6749 section 5.2).
    """

    def post(self, request: http.HttpRequest, *args, **kwargs) -> http.HttpResponse:
        if request.content_type != "application/x-www-form-urlencoded" or not request.POST.get("client_id"):
            return _oauth_error(
                "invalid_request", "Send client_id (and optionally scope) as application/x-www-form-urlencoded."
            )
        return super().post(request, *args, **kwargs)


def _refusing_nul(view):
    """``view``, answering 400 ``invalid_request`` to a parameter holding a NUL character.

    Every parameter of these endpoints (a client id, a code, a token) is looked up in the database, and
    PostgreSQL cannot compare text holding NUL: the driver raises, and the toolkit answered a 500 page."""

    @functools.wraps(view)
    def refusing(request: http.HttpRequest, *args, **kwargs):
        for params in (request.GET, request.POST) if request.method == "POST" else (request.GET,):
            for name, values in params.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    return _oauth_error("invalid_request", "A parameter holds a NUL character.")
        return view(request, *args, **kwargs)

    return refusing


_OWN_VIEWS = {"token": TokenView.as_view(), "device-authorization": DeviceAuthorizationView.as_view()}
urlpatterns = [
    URLPattern(pattern.pattern, _refusing_nul(_OWN_VIEWS.get(pattern.name, pattern.callback)), name=pattern.name)
    for pattern in dot_urls.base_urlpatterns
]
