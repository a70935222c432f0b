"""The hub's own part of ``/v1/`` (``hub/urls.py`` mounts it; each app mounts its own API beside it)."""

from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from hub.api.docs import ApiRootView, error_docs
from hub.api.routers import api_patterns
from hub.api.search import SearchView
from hub.api.users import CurrentUserView

urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    *api_patterns(
        [
            path("users/me", CurrentUserView.as_view(), name="api-users-me"),
            path("search", SearchView.as_view(), name="api-search"),
        ]
    ),
    path("schema", SpectacularJSONAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("docs/errors", error_docs, name="api-errors-docs"),
]
