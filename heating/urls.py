"""The heating app's part of ``/v1/`` (``hub/urls.py`` mounts it)."""

from django.urls import path

from heating.api import NodeViewSet, ReadingViewSet
from heating.rooms_api import AlertViewSet, PresetsView, RoomViewSet
from hub.api.routers import HubRouter, api_patterns

router = HubRouter()
router.register("nodes", NodeViewSet, basename="node")
router.register("readings", ReadingViewSet, basename="reading")
router.register("rooms", RoomViewSet, basename="room")
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = [
    *router.urls,
    *api_patterns([path("presets", PresetsView.as_view(), name="api-presets")]),
]
