"""The router every app's API registers with: no trailing slash, the id rule, the ``.json`` suffix."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter
from rest_framework.urlpatterns import format_suffix_patterns

from hub.api.fields import ID_URL_REGEX

JSON_SUFFIX = ["json"]


class HubRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__(trailing_slash=False)

    def get_lookup_regex(self, viewset, lookup_prefix: str = "") -> str:
        # Every viewset gets the id rule, even one that does not derive from the hub's bases.
        lookup_field = getattr(viewset, "lookup_field", "pk")
        lookup_url_kwarg = getattr(viewset, "lookup_url_kwarg", None) or lookup_field
        lookup_value = getattr(viewset, "lookup_value_regex", None) or ID_URL_REGEX
        return f"(?P<{lookup_prefix}{lookup_url_kwarg}>{lookup_value})"

    def get_urls(self):
        return format_suffix_patterns(super().get_urls(), allowed=JSON_SUFFIX)


def api_patterns(urlpatterns):
    """Plain ``path()`` entries (views outside a router) with the ``.json`` suffix too."""
    return format_suffix_patterns(urlpatterns, allowed=JSON_SUFFIX)
