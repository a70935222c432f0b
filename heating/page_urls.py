"""The heating app's pages (``hub/urls.py`` mounts them at the site root, before the hub's own pages, so the
home page ``/`` is the house)."""

from django.urls import path

from heating import views

urlpatterns = [
    path("", views.home, name="home"),
    path("rooms/state", views.home_state, name="home-state"),
    path("rooms/<slug:slug>/", views.room_page, name="room"),
    path("rooms/<slug:slug>/state", views.room_state, name="room-state"),
    path("devices/", views.devices_page, name="devices"),
    path("devices/state", views.devices_state, name="devices-state"),
    path("heating/", views.heating_moved, name="heating"),
]
