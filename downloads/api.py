"""``/v1/customers``, ``/v1/download-links`` (create, list, filter, revoke, count), ``/v1/download-events``.

Staff only; a token also needs ``downloads:read`` / ``downloads:write`` (hub.api.permissions).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.validators import UniqueValidator

from downloads.edge import EdgeUnavailable
from downloads.models import Customer, DownloadEvent, DownloadLink, LinkState
from downloads.selectors import link_url
from downloads.services import AUDIT_FIELDS, LinkError, customer_create, link_create, link_revoke
from hub.api.fields import ResourceIdField, UtcDateTimeField
from hub.api.serializers import HubModelSerializer
from hub.api.viewsets import HubReadOnlyViewSet


class _DownloadsApi:
    api_scope = "downloads"
    staff_only = True


class CustomerSerializer(HubModelSerializer):
    # A declared field gets none of the model field's validators: the unique one is named here, so a duplicate
    # is a 400 naming ``id`` rather than full_clean()'s error escaping as a 500.
    id = ResourceIdField(
        source="slug",
        validators=[UniqueValidator(Customer.objects.all(), message="A customer with this id already exists.")],
    )

    class Meta:
        model = Customer
        fields = ["id", "name", "contact", "notes", "created_at"]
        read_only_fields = ["created_at"]

    def create(self, validated_data):
        try:
            return customer_create(**validated_data)
        except DjangoValidationError as exc:  # the model's own checks (a duplicate created meanwhile)
            by_field = exc.message_dict
            raise serializers.ValidationError(
                {"id" if name == "slug" else name: messages for name, messages in by_field.items()}
            ) from None

    def validate_id(self, value):
        # The id is signed into every link the customer holds: renaming it would break them all.
        if self.instance is not None and value != self.instance.slug:
            raise serializers.ValidationError("A customer's id cannot change: it is part of every link issued.")
        return value


class CustomerViewSet(
    _DownloadsApi,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    HubReadOnlyViewSet,
):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    lookup_field = "slug"
    time_range_field = "created_at"


class DownloadLinkSerializer(HubModelSerializer):
    customer = serializers.SlugRelatedField(slug_field="slug", queryset=Customer.objects.all())
    expires_at = UtcDateTimeField(required=False)
    state = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    # null once the user who created the link is deleted (the foreign key is SET_NULL).
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = DownloadLink
        fields = [
            "id",
            "url",
            "customer",
            "path",
            "expires_at",
            "max_downloads",
            "download_count",
            "last_fetched_at",
            "state",
            "revoked_at",
            "note",
            "format",
            "key_id",
            "created_by",
            "created_at",
        ]
        read_only_fields = [
            "download_count",
            "last_fetched_at",
            "revoked_at",
            "key_id",
            "created_at",
        ]
        extra_kwargs = {
            "format": {
                "required": False,
                "help_text": "hub (default) or legacy, the old tool's format (needs DOWNLOADS_LEGACY_SECRET; one "
                "legacy link per customer, file and expiry).",
            }
        }

    def get_state(self, link: DownloadLink) -> str:
        return link.state()

    def get_url(self, link: DownloadLink) -> str:
        return link_url(link)

    def create(self, validated_data):
        expires_at = validated_data.get("expires_at") or timezone.now() + timedelta(
            days=settings.DOWNLOADS_DEFAULT_EXPIRY_DAYS
        )
        try:
            return link_create(
                customer=validated_data["customer"],
                path=validated_data["path"],
                expires_at=expires_at,
                max_downloads=validated_data.get("max_downloads"),
                note=validated_data.get("note", ""),
                created_by=self.context["request"].user,
                legacy=validated_data.get("format") == DownloadLink.Format.LEGACY,
            )
        except LinkError as exc:
            field = "format" if exc.field == "legacy" else exc.field
            raise serializers.ValidationError({field: [str(exc)]}) from None


_STATE_PARAM = OpenApiParameter("state", str, enum=list(LinkState.values), description="active, expired, …")


@extend_schema_view(list=extend_schema(parameters=[_STATE_PARAM]), count=extend_schema(parameters=[_STATE_PARAM]))
class DownloadLinkViewSet(_DownloadsApi, mixins.CreateModelMixin, HubReadOnlyViewSet):
    queryset = DownloadLink.objects.select_related("customer", "created_by")
    serializer_class = DownloadLinkSerializer
    time_range_field = "created_at"
    filter_fields = {"customer": "customer__slug", "path": "path"}

    def get_queryset(self):
        queryset = super().get_queryset()
        state = self.request.query_params.get("state")
        if state is None or self.action not in ("list", "count"):
            return queryset
        if state not in LinkState.values:
            raise serializers.ValidationError({"state": [f"expected one of {', '.join(LinkState.values)}."]})
        return queryset.in_state(state)

    @extend_schema(request=None, responses=DownloadLinkSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        link = self.get_object()
        try:
            link_revoke(link=link, by=request.user)
        except EdgeUnavailable as error:
            raise EdgeFolderUnavailable(str(error)) from error
        return Response(self.get_serializer(link).data, status=status.HTTP_200_OK)


class EdgeFolderUnavailable(exceptions.APIException):
    """503: the edge markers' folder cannot be changed, so the link was not revoked (the message says what to fix)."""

    status_code = 503
    default_code = "edge_unavailable"


class DownloadEventSerializer(HubModelSerializer):
    class Meta:
        model = DownloadEvent
        fields = ["id", *AUDIT_FIELDS]


class DownloadEventViewSet(_DownloadsApi, HubReadOnlyViewSet):
    queryset = DownloadEvent.objects.all()
    serializer_class = DownloadEventSerializer
    time_range_field = "at"
    filter_fields = {"link": "link_id", "customer": "customer", "status": "status", "outcome": "outcome"}
