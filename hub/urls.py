"""The hub's URL map: it wires each app's urls in; the apps never import each other."""

from django.contrib import admin
from django.urls import include, path

from hub import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # The REST API: the hub's own part, then each app's beside it (ids and conventions: hub/api/).
    path("v1/", include("hub.api.urls")),
    path("v1/", include("downloads.urls")),
    path("v1/", include("messaging.urls")),
    path("v1/", include("heating.urls")),
    # OAuth 2.0 (django-oauth-toolkit): device flow for scripts, token, revoke; apps are registered in the admin.
    path("o/", include("hub.api.oauth")),
    # A signed-in user's own account: the apps and scripts acting as them, with a Revoke button each.
    path("account/", include("hub.accounts.urls")),
    path("", include("messaging.page_urls")),
    path("", include("heating.page_urls")),
    path("", include("downloads.page_urls")),
    path("", include("hub.pages.urls")),
]
