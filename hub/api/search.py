"""``/v1/search?q=``: one search across resources, filled by the apps.

An app registers a provider from its ``AppConfig.ready`` (hub imports no app)::

    from hub.api.search import register_search_provider

    register_search_provider("rooms", scope="heating:read", search=rooms_matching)

where ``rooms_matching(user, q, limit)`` returns up to ``limit`` dicts ``{"id", "title", "url"}``. Each
provider is asked only when the caller may read it: the user passes its ``staff_only`` / ``permissions`` and a
token carries its ``scope`` (or the umbrella). Search inside one resource is its list's ``?q=`` (DRF's
SearchFilter over the view's ``search_fields``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from oauth2_provider.models import AbstractAccessToken
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.filters import MAX_SEARCH_LENGTH, search_param_schema, search_text
from hub.api.pagination import bounded_int_param
from hub.api.permissions import SignedIn
from hub.api.scopes import scope_granted
from hub.roles import user_is_staff

SEARCH_PARAM = "q"
DEFAULT_HITS = 10
MAX_HITS = 100


@dataclass(frozen=True)
class SearchProvider:
    name: str
    scope: str
    search: Callable[..., list[dict]]
    staff_only: bool = False
    permissions: tuple[str, ...] = ()

    def readable_by(self, request) -> bool:
        user = request.user
        if self.staff_only and not user_is_staff(user):
            return False
        if not all(user.has_perm(name) for name in self.permissions):
            return False
        token = request.auth
        return not isinstance(token, AbstractAccessToken) or scope_granted(token.scope, self.scope)


_providers: dict[str, SearchProvider] = {}


def register_search_provider(
    name: str,
    *,
    scope: str,
    search: Callable[..., list[dict]],
    staff_only: bool = False,
    permissions: tuple[str, ...] = (),
) -> None:
    _providers[name] = SearchProvider(name, scope, search, staff_only, tuple(permissions))


def unregister_search_provider(name: str) -> None:
    _providers.pop(name, None)


class SearchHitSerializer(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()


class SearchView(APIView):
    """Each provider checks the token's scope itself, so any authenticated caller may ask; it sees only the
    kinds of thing it may read."""

    permission_classes = [SignedIn]
    serializer_class = SearchHitSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                SEARCH_PARAM,
                search_param_schema(words_required=True),
                required=True,
                description=f"The words to search for (at most {MAX_SEARCH_LENGTH} characters).",
            ),
            OpenApiParameter("limit", int, description=f"Hits per kind of thing, 1 to {MAX_HITS}."),
        ],
        responses=inline_serializer(
            "SearchResults",
            fields={
                "q": serializers.CharField(),
                "searched": serializers.ListField(child=serializers.CharField()),
                "results": SearchHitSerializer(many=True),
            },
        ),
    )
    def get(self, request):
        query = search_text(request, SEARCH_PARAM).strip()
        if not query:
            raise serializers.ValidationError({SEARCH_PARAM: ["Give the words to search for, e.g. ?q=boiler."]})
        limit = bounded_int_param(request, "limit", default=DEFAULT_HITS, minimum=1, maximum=MAX_HITS)
        hits = []
        searched = []
        for provider in _providers.values():
            if not provider.readable_by(request):
                continue
            searched.append(provider.name)
            for hit in provider.search(request.user, query, limit)[:limit]:
                hits.append({"type": provider.name, **hit, "url": request.build_absolute_uri(hit["url"])})
        return Response({"q": query, "searched": searched, "results": SearchHitSerializer(hits, many=True).data})
