"""The messaging app's pages in the dashboard (``hub/urls.py`` mounts them at the site root)."""

from django.urls import path

from messaging import views

urlpatterns = [
    path("events/", views.events_page, name="events"),
    path("live/", views.live_page, name="live"),
]
