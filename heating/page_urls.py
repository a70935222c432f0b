"""The heating app's pages in the dashboard (``hub/urls.py`` mounts them at the site root)."""

from django.urls import path

from heating import views

urlpatterns = [
    path("heating/", views.heating_page, name="heating"),
    path("heating/state", views.heating_state, name="heating-state"),
]
