"""The downloads app's part of ``/v1/`` (``hub/urls.py`` mounts it). The download path itself is not here:
it is the lean ASGI app in ``downloads/asgi.py``, dispatched before Django."""

from downloads.api import CustomerViewSet, DownloadEventViewSet, DownloadLinkViewSet
from hub.api.routers import HubRouter

router = HubRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("download-links", DownloadLinkViewSet, basename="download-link")
router.register("download-events", DownloadEventViewSet, basename="download-event")

urlpatterns = router.urls
