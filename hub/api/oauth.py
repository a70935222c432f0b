"""The OAuth 2.0 endpoints under ``/o/``: django-oauth-toolkit's, minus its self-service application pages.

Applications are registered by an admin in the Django admin. Scripts use the device authorization grant
(RFC 8628): they call ``device-authorization/`` and ``token/``; ``device/`` is the page where the signed-in
user approves the code a script shows.

``token/`` is the toolkit's view with the device grant's exchange made safe and answered as RFC 8628 says (see
:class:`TokenView`); ``device-authorization/`` refuses an unknown scope at once (see
:class:`DeviceAuthorizationView`).
"""

from __future__ import annotations

import functools
import json
from datetime import timedelta

from django import http
from django.db import transaction
from django.urls import URLPattern
from django.utils import timezone
from oauth2_provider import urls as dot_urls
from oauth2_provider import views as dot_views
from oauth2_provider.models import get_access_token_model, get_application_model, get_device_grant_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode
from oauthlib.oauth2.rfc6749 import errors as rfc6749_errors
from oauthlib.oauth2.rfc8628 import errors as rfc8628_errors

app_name = "oauth2_provider"  # DOT's views reverse their own names in this namespace

DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# The status a device grant takes once its code has been exchanged for tokens. The toolkit has no such state
# (its AUTHORIZED grant stays AUTHORIZED for ever); the column is a plain CharField, so it needs no migration.
CONSUMED = "consumed"
# RFC 8628 section 3.5: on each "slow_down" the client's polling interval grows by this much, for good.
SLOW_DOWN_STEP_SECONDS = 5
# RFC 8628 section 3.2: the interval a client uses when the response names none.
DEFAULT_INTERVAL_SECONDS = 5


# How stale a token's "last used" time may get: one write per token per minute at most, not one per API call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class HubOAuth2Validator(OAuth2Validator):
    """The toolkit's validator, recording when each access token was last used (``OAUTH2_VALIDATOR_CLASS``).

    The toolkit stores no such time. Each user's "Connected apps" page (hub/accounts) shows it, so a household
    member can tell a script still at work from one long forgotten. It is kept in the token's ``updated``
    column, which the toolkit sets when it saves the token and never reads, and written only when the stored
    time is a minute old or more: the token is already loaded here, so most API calls cost nothing extra."""

    def validate_bearer_token(self, token, scopes, request):
        valid = super().validate_bearer_token(token, scopes, request)
        access_token = getattr(request, "access_token", None) if valid else None
        if access_token is not None and access_token.pk is not None:
            now = timezone.now()
            if now - access_token.updated >= LAST_USED_RESOLUTION:
                # A queryset update: no auto_now, no other column rewritten under a concurrent refresh.
                get_access_token_model().objects.filter(pk=access_token.pk).update(updated=now)
                access_token.updated = now
        return valid


def _oauth_error(error: str, description: str | None = None, *, status: int = 400) -> http.JsonResponse:
    # RFC 6749 section 5.2's error body, as the toolkit's own errors are written.
    body = {"error": error} if description is None else {"error": error, "error_description": description}
    response = http.JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _oauthlib_error(error: rfc6749_errors.OAuth2Error) -> http.HttpResponse:
    # oauthlib's own body, status and headers (a 401 carries WWW-Authenticate), as the toolkit answers them.
    response = http.HttpResponse(error.json, status=error.status_code, content_type="application/json")
    for name, value in error.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def _oauthlib_request(view: dot_views.TokenView, request: http.HttpRequest) -> OAuthlibRequest:
    """``request`` as oauthlib's validator reads it (as the toolkit's own device view builds one)."""
    core = view.get_oauthlib_core()
    body = urlencode(core.extract_body(request))
    return OAuthlibRequest(request.build_absolute_uri(), request.method, body, core.extract_headers(request))


class TokenView(dot_views.TokenView):
    """django-oauth-toolkit's token endpoint, with the device grant's exchange done here.

    The toolkit's ``TokenView.device_flow_token_response`` came with the device grant in django-oauth-toolkit
    3.2 (pull request #1539) and is unchanged on its development branch as of this writing (no upstream issue
    or fix for these was found). Where it departs from RFC 8628 and RFC 6749, the hub answers instead:

    * A request with the device grant but no ``device_code`` read ``request.POST["device_code"]`` and failed
      with a 500 HTML page; it is a 400 ``invalid_request`` (RFC 6749 section 5.2).
    * The client is authenticated first (RFC 6749 section 3.2.1; a public client by its ``client_id``): an
      unknown one is a 401 ``invalid_client``. An unknown device code, or one issued to another client, is a
      400 ``invalid_grant`` (RFC 6749 section 5.2), not the toolkit's 404 ``device_not_found``, which no client
      library knows.
    * A code past its lifetime is ``expired_token`` (RFC 8628 section 3.5); the toolkit kept answering
      ``authorization_pending`` because nothing marked it expired.
    * A client polling sooner than the grant's interval after its previous poll gets ``slow_down``, and the
      interval grows by 5 s for that code from then on (RFC 8628 section 3.5); the toolkit never said it. The
      interval and the time of the last poll live in the grant's row (its ``interval`` and ``last_checked``
      columns, which the toolkit has but never used), so every web process sees the same ones.
    * A device grant stayed AUTHORIZED after its code was exchanged, so the same code could be exchanged again
      and again, each time for a new, independent access and refresh token. A device code is single use
      (RFC 8628 section 3.5 answers with tokens once; RFC 6749 section 5.2 calls a used grant
      ``invalid_grant``). The exchange locks the grant's row, issues the tokens and marks the grant consumed
      in one transaction, so of two simultaneous exchanges exactly one gets tokens; the other waits for that
      commit, reads the grant consumed and gets ``invalid_grant``. (SQLite has no row locks: there the hub's
      IMMEDIATE transactions take the database's write lock first, which serializes the same way.) The same
      lock orders simultaneous polls, so each sees the one before it.

    A pending or denied grant gets the toolkit's answers (``authorization_pending``, ``access_denied``).
    """

    def post(self, request: http.HttpRequest, *args, **kwargs) -> http.HttpResponse:
        if request.POST.get("grant_type") != DEVICE_GRANT_TYPE:
            return super().post(request, *args, **kwargs)
        device_code = request.POST.get("device_code")
        if not device_code:
            return _oauth_error("invalid_request", "Missing device_code parameter.")
        client_request = _oauthlib_request(self, request)
        validator = self.get_oauthlib_core().server.request_validator
        if not validator.authenticate_client(client_request):
            return _oauthlib_error(rfc6749_errors.InvalidClientError(request=client_request))
        with transaction.atomic():
            return self._device_exchange(request, device_code, client_id=client_request.client.client_id)

    def _device_exchange(self, request: http.HttpRequest, device_code: str, *, client_id: str) -> http.HttpResponse:
        model = get_device_grant_model()
        grant = model.objects.select_for_update().filter(device_code=device_code).first()
        if grant is None:
            return _oauth_error("invalid_grant", "Unknown device code.")
        if grant.client_id != client_id:
            return _oauth_error("invalid_grant", "This device code was issued to another client.")
        if grant.status == CONSUMED:
            return _oauth_error("invalid_grant", "This device code has already been exchanged for tokens.")
        if grant.is_expired():  # past its lifetime, it is marked EXPIRED (and saved) here
            return _oauthlib_error(rfc8628_errors.ExpiredTokenError())
        too_soon = timezone.now() - grant.last_checked < timedelta(seconds=grant.interval)
        if too_soon:
            grant.interval += SLOW_DOWN_STEP_SECONDS
        grant.save(update_fields=["interval", "last_checked"])  # last_checked is auto_now: this poll's time
        if too_soon:
            return _oauthlib_error(
                rfc8628_errors.SlowDownError(f"Poll at most every {grant.interval} seconds with this device code.")
            )
        refusal = {
            model.AUTHORIZATION_PENDING: rfc8628_errors.AuthorizationPendingError,
            model.DENIED: rfc8628_errors.AccessDenied,
        }.get(grant.status)
        if refusal is not None:
            return _oauthlib_error(refusal())
        if grant.status != model.AUTHORIZED:
            return _oauth_error("invalid_grant", f"This device code is {grant.status!r}.")
        _url, headers, body, status = self.create_token_response(request)
        if status != 200:
            # Nothing was issued (a scope the hub lacks, an application not allowed the device grant): the grant
            # stays as it was, and the same request fails the same way again.
            return http.JsonResponse(json.loads(body), status=status)
        grant.status = CONSUMED
        grant.save(update_fields=["status"])
        response = http.JsonResponse(json.loads(body), status=status)
        for name, value in headers.items():
            response[name] = value
        return response


class DeviceAuthorizationView(dot_views.DeviceAuthorizationView):
    """The toolkit's ``device-authorization/``, answering as RFC 8628 says where it did not.

    * oauthlib's endpoint reads ``request.headers["Content-Type"]`` (``DeviceAuthorizationEndpoint.
      validate_device_authorization_request``), so a POST without that header (``curl -X POST``, an empty
      body) failed with a 500 page before it could say the client_id is missing. Such a request is the 400
      ``invalid_request`` the endpoint means to give (RFC 8628 section 3.1, RFC 6749 section 5.2).
    * An unknown ``client_id`` was oauthlib's 400 ``invalid_request``; RFC 6749 section 5.2 makes it a 401
      ``invalid_client``, as the token endpoint answers it.
    * A scope the hub does not have was accepted here, shown to the user, and refused only at the token
      endpoint after the user approved it. It is a 400 ``invalid_scope`` at once (RFC 8628 section 3.2 answers
      errors as RFC 6749 section 5.2 does), and no code is issued.
    * The grant's polling ``interval`` is the one the response announces (the toolkit's column defaulted to
      5 s whatever ``DEVICE_FLOW_INTERVAL`` said), and its first poll may come at once: the interval is
      between polls (RFC 8628 section 3.5), so the code counts as last polled one interval before it was
      issued. :class:`TokenView` enforces the interval from there.
    * The answer carries ``Cache-Control: no-store`` (RFC 8628 section 3.2's example): its device code is a
      credential until it is exchanged.
    """

    def post(self, request: http.HttpRequest, *args, **kwargs) -> http.HttpResponse:
        if request.content_type != "application/x-www-form-urlencoded" or not request.POST.get("client_id"):
            return _oauth_error(
                "invalid_request", "Send client_id (and optionally scope) as application/x-www-form-urlencoded."
            )
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            issued = json.loads(response.content)
            interval = issued.get("interval", DEFAULT_INTERVAL_SECONDS)
            get_device_grant_model().objects.filter(device_code=issued["device_code"]).update(
                interval=interval, last_checked=timezone.now() - timedelta(seconds=interval)
            )
        response["Cache-Control"] = "no-store"
        return response

    def create_device_authorization_response(self, request: http.HttpRequest):
        """oauthlib's answer (the client checked, nothing stored yet), refused when a scope is unknown."""
        if not get_application_model().objects.filter(client_id=request.POST["client_id"]).exists():
            error = rfc6749_errors.InvalidClientError()
            return {**error.headers, "Cache-Control": "no-store"}, error.json, error.status_code
        headers, body, status = super().create_device_authorization_response(request)
        if status != 200:
            return headers, body, status
        requested = set(request.POST.get("scope", "").split())
        unknown = requested - set(get_scopes_backend().get_available_scopes(request=request))
        if unknown:
            error = rfc6749_errors.InvalidScopeError(f"Unknown scope: {' '.join(sorted(unknown))}.")
            return {**headers, **error.headers, "Cache-Control": "no-store"}, error.json, error.status_code
        return headers, body, status


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
