"""The heating app's part of ``/v1/`` (``hub/urls.py`` mounts it)."""

from heating.api import NodeViewSet, ReadingViewSet
from hub.api.routers import HubRouter

router = HubRouter()
router.register("nodes", NodeViewSet, basename="node")
router.register("readings", ReadingViewSet, basename="reading")

urlpatterns = router.urls
