"""A test-only resource built on the shared layer, mounted beside the hub's real URLs.

It stands in for the apps' lists (events, download links, …): a string id, a date, a filter, a verb.
"""

from django.http import HttpResponse
from django.urls import include, path
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from hub import urls as hub_urls
from hub.api.fields import validate_resource_id
from hub.api.routers import HubRouter
from hub.api.serializers import HubModelSerializer
from hub.api.viewsets import HubModelViewSet
from hub.models import Heartbeat


class BeatSerializer(HubModelSerializer):
    class Meta:
        model = Heartbeat
        fields = ["name", "beat_at", "interval_seconds", "details"]
        extra_kwargs = {"name": {"validators": [validate_resource_id]}}

    def validate(self, attrs):
        if attrs.get("interval_seconds") == 0 and attrs.get("details", {}).get("strict"):
            raise serializers.ValidationError("A strict beat needs an interval.")
        return attrs


class BeatViewSet(HubModelViewSet):
    queryset = Heartbeat.objects.order_by("beat_at", "name")
    serializer_class = BeatSerializer
    api_scope = "events"
    time_range_field = "beat_at"
    filter_fields = {"interval": "interval_seconds"}
    search_fields = ["name"]
    required_permissions = {"DELETE": ("hub.send_commands",)}
    # A verb may need another scope than its resource's writes: an action's entry wins over the method's.
    required_scopes = {"silence": "push:write"}

    @action(detail=True, methods=["post"])
    def silence(self, request, pk=None):
        beat = self.get_object()
        beat.details = {**beat.details, "silenced": True}
        beat.save(update_fields=["details"])
        return Response(self.get_serializer(beat).data)


class StaffOnlyView(APIView):
    api_scope = "downloads"
    staff_only = True

    required_scopes = {"POST": "push:write"}

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"posted": True})


class UndeclaredScopeView(APIView):
    def get(self, request):
        return Response({"ok": True})


class BrokenView(APIView):
    api_scope = "events"

    def get(self, request):
        raise RuntimeError("a bug in an API view")


def broken_django_view(request):
    raise RuntimeError("a bug in a plain Django view under /v1/")


def html_teapot(request):
    return HttpResponse("<html><body>I'm a teapot</body></html>", status=418)


router = HubRouter()
router.register("beats", BeatViewSet)

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/staff-only", StaffOnlyView.as_view()),
    path("v1/undeclared", UndeclaredScopeView.as_view()),
    path("v1/broken", BrokenView.as_view()),
    path("v1/broken-plain", broken_django_view),
    path("v1/teapot", html_teapot),
    *hub_urls.urlpatterns,
]
