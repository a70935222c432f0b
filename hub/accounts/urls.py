"""The account pages, mounted under /account/ by hub/urls.py."""

from __future__ import annotations

from django.urls import path

from hub.accounts import views

urlpatterns = [
    path("apps/", views.connected_apps, name="connected_apps"),
    path("apps/<int:token_id>/revoke/", views.connected_app_revoke, name="connected_app_revoke"),
]
