"""Writes for the account pages: a user revoking one of their own connections."""

from __future__ import annotations

from django.db import transaction
from oauth2_provider.models import get_access_token_model, get_refresh_token_model, revoke_access_token


class ConnectionNotFound(LookupError):
    """No token with that id belongs to this user (someone else's, already revoked, or never existed)."""


#: Ids are 64-bit; a longer number in the address names nothing (and SQLite's driver would raise on it).
_MAX_ID = 2**63 - 1


def connection_revoke(user, token_id: int) -> str:
    """Revoke the grant behind ``user``'s access token ``token_id``: the token, its refresh token, and every token
    of its refresh chain, so the app can neither call the API nor renew. Raises :class:`ConnectionNotFound` when
    the token is not ``user``'s; another user's tokens are never touched. Returns the app's name."""
    if not 0 < token_id <= _MAX_ID:
        raise ConnectionNotFound(token_id)
    with transaction.atomic():
        token = (
            get_access_token_model()
            .objects.select_related("refresh_token", "application")
            .filter(pk=token_id, user=user)
            .first()
        )
        if token is None:
            raise ConnectionNotFound(token_id)
        refresh = getattr(token, "refresh_token", None)
        family = refresh.token_family if refresh is not None else None
        # The toolkit's own revocation (the one /o/revoke_token/ and the admin action use): the refresh token
        # marked revoked and its access token deleted, or the access token alone when it has none.
        revoke_access_token(token)
        if family:
            # Rotation leaves the chain's earlier members behind; revoke whatever of it is still live.
            get_refresh_token_model().revoke_family(family)
    return token.application.name if token.application else "the app"
