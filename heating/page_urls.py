"""The heating app's pages (``hub/urls.py`` mounts them at the site root, before the hub's own pages, so the
home page ``/`` is the house)."""

from django.urls import path

from heating import setup_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("rooms/state", views.home_state, name="home-state"),
    path("rooms/<slug:slug>/", views.room_page, name="room"),
    path("rooms/<slug:slug>/state", views.room_state, name="room-state"),
    path("devices/", views.devices_page, name="devices"),
    path("devices/state", views.devices_state, name="devices-state"),
    path("heating/", views.heating_moved, name="heating"),
    # Staff set rooms up here (under /setup/: any word could be a room's id under /rooms/).
    path("setup/rooms/", setup_views.rooms_setup, name="rooms-setup"),
    path("setup/rooms/add/", setup_views.room_add, name="room-add"),
    path("setup/rooms/<slug:slug>/edit/", setup_views.room_edit, name="room-edit"),
    path("setup/rooms/<slug:slug>/delete/", setup_views.room_remove, name="room-delete"),
    path("house/away", setup_views.house_away, name="house-away"),
]
