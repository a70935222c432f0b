"""Base viewsets: list, detail and ``/count`` with the same filters; verbs as ``@action(detail=True)``.

    class LinkViewSet(HubModelViewSet):
        queryset = DownloadLink.objects.all()
        serializer_class = LinkSerializer          # a HubModelSerializer
        api_scope = "downloads"                    # downloads:read / downloads:write
        staff_only = True
        time_range_field = "created_at"            # ?since= / ?until=
        filter_fields = ("path",)                  # ?path=

        @action(detail=True, methods=["post"])     # POST /v1/download-links/{id}/revoke
        def revoke(self, request, pk=None): ...

and in the app's urls: ``router = HubRouter(); router.register("download-links", LinkViewSet)``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from hub.api.fields import ID_URL_REGEX


class CountMixin:
    @extend_schema(
        filters=True,
        responses=inline_serializer("Count", fields={"count": serializers.IntegerField()}),
        description="How many objects the list would hold with the same filters.",
    )
    @action(detail=False, methods=["get"])
    def count(self, request, *args, **kwargs):
        return Response({"count": self.filter_queryset(self.get_queryset()).count()})


class HubGenericViewSet(viewsets.GenericViewSet):
    lookup_value_regex = ID_URL_REGEX


class HubReadOnlyViewSet(CountMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, HubGenericViewSet):
    pass


class HubModelViewSet(
    CountMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    HubGenericViewSet,
):
    pass
