"""``/v1/nodes`` (list, detail, count, each with its latest values; the detail adds its recent signal),
``/v1/nodes/{id}/commands`` (GET the node's commands; POST one: ``{"endpoint": "relay0", "value": 1}``),
``/v1/readings`` (filters ``node``, ``endpoint``, ``since``/``until``; count; ``/v1/readings/export`` as CSV with
the same filters).

Reading needs ``heating:read`` on a token; a command needs the ``hub.send_commands`` permission and, on a token,
``heating:write`` (hub.api.permissions).
"""

from __future__ import annotations

import csv

from django.http import StreamingHttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from heating.models import Command, Node, Reading
from heating.selectors import latest_readings, node_definition, readings_filter
from heating.services import CommandPending, CommandRefused, RoomHeaterCommandRefused, command_queue
from hub.api.errors import Conflict
from hub.api.fields import UtcDateTimeField
from hub.api.renderers import HubJSONRenderer
from hub.api.serializers import HubModelSerializer, HubSerializer
from hub.api.viewsets import HubReadOnlyViewSet
from hub.timefmt import format_utc


class _HeatingApi:
    api_scope = "heating"


class LatestValueSerializer(HubSerializer):
    id = serializers.CharField(source="endpoint_id")
    name = serializers.CharField()
    value = serializers.JSONField()
    unit = serializers.CharField()
    recorded_at = UtcDateTimeField()


class NodeSerializer(HubModelSerializer):
    id = serializers.CharField(source="key", read_only=True)
    location = serializers.CharField(source="place", read_only=True)
    values = serializers.SerializerMethodField()
    writable = serializers.SerializerMethodField()

    class Meta:
        model = Node
        fields = [
            "id",
            "address",
            "name",
            "location",
            "manufacturer_id",
            "product_id",
            "definition",
            "unknown_product",
            "reachable",
            "system_state",
            "first_seen",
            "last_heard",
            "last_rssi",
            "last_lqi",
            "values",
            "writable",
        ]

    def get_values(self, node: Node) -> list[dict]:
        return LatestValueSerializer(latest_readings(node), many=True).data

    def get_writable(self, node: Node) -> list[str]:
        """Endpoints a command may set (outputs of the node's device definition)."""
        definition = node_definition(node)
        return [endpoint.name for endpoint in definition.endpoints if endpoint.writable] if definition else []


class SignalSampleSerializer(HubSerializer):
    at = serializers.CharField(help_text="when the packet was heard (UTC)")
    rssi = serializers.FloatField(help_text="dBm")
    lqi = serializers.IntegerField()


class NodeDetailSerializer(NodeSerializer):
    """One node: what the list shows, plus its recent signal (every packet heard, newest first)."""

    signal = serializers.SerializerMethodField()

    class Meta(NodeSerializer.Meta):
        fields = [*NodeSerializer.Meta.fields, "signal"]

    @extend_schema_field(SignalSampleSerializer(many=True))
    def get_signal(self, node: Node) -> list[dict]:
        return node.recent_signal()


class CommandSerializer(HubModelSerializer):
    node = serializers.CharField(source="node.key", read_only=True)
    register = serializers.IntegerField(source="register_id", read_only=True)
    value = serializers.JSONField(source="requested_value")
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Command
        fields = [
            "id",
            "node",
            "endpoint",
            "register",
            "value",
            "state",
            "attempts",
            "origin",
            "requested_by",
            "requested_at",
            "sent_at",
            "finished_at",
            "error",
        ]
        read_only_fields = [name for name in fields if name not in ("endpoint", "value")]


class NodeViewSet(_HeatingApi, HubReadOnlyViewSet):
    queryset = Node.objects.all()
    serializer_class = NodeSerializer
    lookup_field = "key"
    time_range_field = "last_heard"
    filter_fields = {"location": "location", "reachable": "reachable"}
    search_fields = ["name", "location", "definition"]
    required_permissions = {"POST": ("hub.send_commands",)}

    def get_serializer_class(self):
        return {"commands": CommandSerializer, "retrieve": NodeDetailSerializer}.get(self.action, NodeSerializer)

    @extend_schema(
        request=CommandSerializer,
        responses={
            200: CommandSerializer(many=True),
            202: CommandSerializer,
            409: OpenApiResponse(
                description="Conflict: the relay heats a room (the message names it; its thermostat switches it), "
                "or the relay already has a command waiting to be confirmed (the message names that command; "
                "send again once it is confirmed or failed)"
            ),
        },
    )
    @action(detail=True, methods=["get", "post"])
    def commands(self, request, key=None):
        node = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(node.commands.select_related("node", "requested_by"))
            return self.get_paginated_response(CommandSerializer(page, many=True, context={"request": request}).data)
        incoming = CommandSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        try:
            command = command_queue(
                node=node,
                endpoint=incoming.validated_data["endpoint"],
                value=incoming.validated_data["requested_value"],
                definition=node_definition(node),
                requested_by=request.user,
                origin="api",
            )
        except (RoomHeaterCommandRefused, CommandPending) as exc:
            # Well-formed requests the relay's state refuses: it is the thermostat's, or busy with a command.
            raise Conflict(str(exc)) from None
        except CommandRefused as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None
        # 202: queued; the serial worker sends it and confirms it by the node's STATUS (GET it to follow).
        return Response(CommandSerializer(command, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class ReadingSerializer(HubModelSerializer):
    node = serializers.CharField(source="node.key", read_only=True)
    endpoint = serializers.CharField(source="endpoint_id")

    class Meta:
        model = Reading
        fields = ["id", "node", "endpoint", "name", "value", "unit", "recorded_at", "rssi", "lqi"]


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/csv`` and ``?format=csv`` reach the export; the export writes its own body."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else str(data).encode()


class _Echo:
    def write(self, value: str) -> str:
        return value


_READING_FILTERS = [
    OpenApiParameter("node", str, description="the node's id, e.g. a1"),
    OpenApiParameter("endpoint", str, description="lagarto's endpoint id (161.11.0) or the endpoint's name"),
]


@extend_schema_view(
    list=extend_schema(parameters=_READING_FILTERS),
    count=extend_schema(parameters=_READING_FILTERS),
    export=extend_schema(parameters=_READING_FILTERS, responses={(200, "text/csv"): str}),
)
class ReadingViewSet(_HeatingApi, HubReadOnlyViewSet):
    serializer_class = ReadingSerializer
    time_range_field = "recorded_at"

    def get_queryset(self):
        params = self.request.query_params
        return readings_filter(node=params.get("node"), endpoint=params.get("endpoint"))

    # JSON first: it is what DRF falls back on to render an error (a bad filter, ?format=), so errors keep the
    # API's JSON body; the export itself streams CSV whichever renderer Accept or ?format= chose.
    @action(detail=False, methods=["get"], renderer_classes=[HubJSONRenderer, CsvRenderer])
    def export(self, request):
        """Every reading the filters select, oldest first, as CSV (no paging)."""
        readings = self.filter_queryset(self.get_queryset()).order_by("recorded_at", "id")
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(["time", "node", "endpoint", "name", "value", "unit", "rssi", "lqi"])
            for reading in readings.iterator(chunk_size=2000):
                yield writer.writerow(
                    [
                        format_utc(reading.recorded_at),
                        reading.node.key,
                        reading.endpoint_id,
                        reading.name,
                        reading.value,
                        reading.unit,
                        "" if reading.rssi is None else reading.rssi,
                        "" if reading.lqi is None else reading.lqi,
                    ]
                )

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="readings.csv"'
        return response
