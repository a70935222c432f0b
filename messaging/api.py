"""``/v1/events`` and ``/v1/events/count``: the event log, newest first.

Filters: ``?type=heating`` (a type prefix by whole dotted segments: ``heating.reading``, not ``heatingx``),
``?source=serial``, ``?since=`` (inclusive) / ``?until=`` (exclusive) on ``occurred_at``. Staff only; a token
also needs ``events:read`` (hub.api.permissions).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from hub.api.serializers import HubModelSerializer
from hub.api.viewsets import HubReadOnlyViewSet
from messaging.models import Event
from messaging.selectors import events_filter


class EventSerializer(HubModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "type", "occurred_at", "source", "data", "topics", "received_at"]


_FILTERS = [
    OpenApiParameter("type", str, description="type prefix by whole dotted segments: heating → heating.reading"),
    OpenApiParameter("source", str, description="exact source, e.g. serial"),
]


@extend_schema_view(list=extend_schema(parameters=_FILTERS), count=extend_schema(parameters=_FILTERS))
class EventViewSet(HubReadOnlyViewSet):
    serializer_class = EventSerializer
    queryset = Event.objects.none()  # the schema's model; requests read through the selector
    api_scope = "events"
    staff_only = True
    time_range_field = "occurred_at"

    def get_queryset(self):
        params = self.request.query_params
        return events_filter(type_prefix=params.get("type"), source=params.get("source"))
