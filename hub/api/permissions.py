"""One rule everywhere: the user must be allowed AND, for a token, the token must carry the scope.

A view declares what it needs with class attributes (read by ``ScopedPermission``, the default):

* ``api_scope = "events"`` — ``events:read`` for GET/HEAD/OPTIONS, ``events:write`` for the rest;
* ``required_scopes = {"GET": "users:read", "revoke": "downloads:write"}`` — per HTTP method or per viewset
  action (an action wins), for when the default split does not fit;
* ``staff_only = True`` — admin-like resources;
* ``required_permissions = ("hub.send_commands",)`` or ``{"POST": ("hub.send_commands",)}`` — Django
  permissions the user needs (for every method, or per method / action).

Session requests (the hub's own pages) need only the user part. A token request to a view that declares no
scope is refused: forgetting the declaration must not open a resource to every token.
"""

from __future__ import annotations

from oauth2_provider.models import AbstractAccessToken
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS, BasePermission

from hub.api.errors import InsufficientScope
from hub.api.scopes import scope_granted
from hub.roles import user_is_staff


def _per_request(declared, request, view):
    """A declaration that is either one value for all requests or a dict keyed by action or HTTP method."""
    if not isinstance(declared, dict):
        return declared
    action = getattr(view, "action", None)
    if action in declared:
        return declared[action]
    return declared.get(request.method)


def required_scope(request, view) -> str | None:
    explicit = _per_request(getattr(view, "required_scopes", None), request, view)
    if explicit:
        return explicit
    app = getattr(view, "api_scope", None)
    if not app:
        return None
    return f"{app}:read" if request.method in SAFE_METHODS else f"{app}:write"


def signed_in(request) -> bool:
    """An active user behind the request; False lets DRF answer 401 with the Bearer challenge."""
    user = request.user
    if not (user and user.is_authenticated):
        return False
    if not user.is_active:
        # Sessions end when an account is disabled; tokens (and their refresh) would otherwise live on.
        raise AuthenticationFailed("This account is disabled.")
    return True


class SignedIn(BasePermission):
    """For views that check scopes per item themselves (``/v1/search``): an active user, nothing more."""

    def has_permission(self, request, view) -> bool:
        return signed_in(request)


class ScopedPermission(BasePermission):
    message = "You may not do this."

    def has_permission(self, request, view) -> bool:
        if not signed_in(request):
            return False
        user = request.user
        token = request.auth
        if isinstance(token, AbstractAccessToken):
            scope = required_scope(request, view)
            if scope is None:
                self.message = "This resource is not open to OAuth tokens."
                return False
            if not scope_granted(token.scope, scope):
                raise InsufficientScope(scope)
        if getattr(view, "staff_only", False) and not user_is_staff(user):
            self.message = "Only staff may do this."
            return False
        permissions = _per_request(getattr(view, "required_permissions", ()), request, view) or ()
        missing = [name for name in permissions if not user.has_perm(name)]
        if missing:
            self.message = f"Your account lacks the permission {', '.join(missing)}."
            return False
        return True
