"""Template context every page's navigation bar needs."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from hub.pages.navigation import navigation_for


def navigation(request) -> dict:
    # Lazy: JSON and admin responses never render the bar, so they never pay for the group lookup.
    user = getattr(request, "user", None)
    if user is None:
        return {"hub_navigation": []}
    match = getattr(request, "resolver_match", None)
    current = match.url_name if match else None
    return {"hub_navigation": SimpleLazyObject(lambda: navigation_for(user, current_url_name=current))}
