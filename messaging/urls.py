"""The messaging app's part of ``/v1/`` (``hub/urls.py`` mounts it)."""

from hub.api.routers import HubRouter
from messaging.api import EventViewSet

router = HubRouter()
router.register("events", EventViewSet, basename="event")

urlpatterns = router.urls
