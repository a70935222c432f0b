"""Reads for the account pages: the live OAuth connections of one user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Min, Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model, refresh_token_expire_timedelta


@dataclass(frozen=True)
class Connection:
    """One app's grant to act as the user: an access token, and the refresh token it can be renewed with."""

    #: The access token's id: what the Revoke button names.
    token_id: int
    app_name: str
    scopes: tuple[str, ...]
    #: When the user approved it (the first token of its refresh chain).
    created: datetime
    #: The last API call made with it or its last renewal (recorded at most once a minute).
    last_used: datetime
    #: When its access token stops working.
    access_expires: datetime
    #: Whether it holds a refresh token, and until when that gets new access tokens (None: no limit is set).
    renewable: bool
    renewable_until: datetime | None

    @property
    def expires(self) -> datetime | None:
        """When the app loses access unless the user approves it again (None: never, while it renews)."""
        return self.renewable_until if self.renewable else self.access_expires


def connections_of(user, *, now: datetime | None = None) -> list[Connection]:
    """``user``'s live connections, newest first: unexpired access tokens, and renewable ones.

    A refresh token is renewable while django-oauth-toolkit would still accept it: not revoked, bound to an access
    token, and that token expired less than ``REFRESH_TOKEN_EXPIRE_SECONDS`` ago (its own rule, in
    ``OAuth2Validator.validate_refresh_token``)."""
    now = now or timezone.now()
    renew_for = refresh_token_expire_timedelta()
    live_refresh = Q(refresh_token__isnull=False, refresh_token__revoked__isnull=True)
    if renew_for is not None:
        live_refresh &= Q(expires__gt=now - renew_for)
    tokens = (
        get_access_token_model()
        .objects.filter(user=user)
        .filter(Q(expires__gt=now) | live_refresh)
        .select_related("application", "refresh_token")
        .order_by("-created", "-pk")
    )
    tokens = list(tokens)
    families = {
        token.refresh_token.token_family
        for token in tokens
        if _live_refresh(token) is not None and token.refresh_token.token_family
    }
    # A rotated chain keeps its revoked refresh tokens (until cleartokens): the oldest says when it was approved.
    first_of_family = dict(
        get_refresh_token_model()
        .objects.filter(user=user, token_family__in=families)
        .values("token_family")
        .annotate(first=Min("created"))
        .values_list("token_family", "first")
    )
    connections = []
    for token in tokens:
        refresh = _live_refresh(token)
        renewable_until = None
        created = token.created
        if refresh is not None:
            renewable_until = token.expires + renew_for if renew_for is not None else None
            created = min(created, first_of_family.get(refresh.token_family, refresh.created), refresh.created)
        connections.append(
            Connection(
                token_id=token.pk,
                app_name=token.application.name if token.application else "(deleted app)",
                scopes=tuple(token.scope.split()),
                created=created,
                last_used=max(token.updated, token.created),
                access_expires=token.expires,
                renewable=refresh is not None,
                renewable_until=renewable_until,
            )
        )
    return connections


def _live_refresh(token):
    refresh = getattr(token, "refresh_token", None)
    return refresh if refresh is not None and refresh.revoked is None else None
