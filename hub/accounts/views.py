"""The account pages: thin views over hub.accounts' selectors and services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hub.accounts.selectors import connections_of
from hub.accounts.services import ConnectionNotFound, connection_revoke


@login_required
def connected_apps(request):
    return render(request, "accounts/connected_apps.html", {"connections": connections_of(request.user)})


@require_POST
@login_required
def connected_app_revoke(request, token_id: int):
    # CSRF: Django's middleware refuses a POST without the form's token (403) before this runs.
    try:
        name = connection_revoke(request.user, token_id)
    except ConnectionNotFound:
        # Another user's token, one already revoked, or no such id: the same 404, so nothing is learnt.
        raise Http404("No such connection on your account.") from None
    messages.success(request, f"Revoked: {name} can no longer act as you.")
    return redirect("connected_apps")
