"""Serializers with the hub's conventions: its date format and ``?fields=`` partial responses."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from hub.api.fields import UtcDateTimeField

FIELDS_PARAM = "fields"


class SparseFieldsMixin:
    """``?fields=name,setpoint`` keeps only those keys in each object; an unknown name is a 400 naming it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requested_fields: list[str] | None = None
        request = self.context.get("request")
        query = getattr(request, "query_params", None)
        if query is None or FIELDS_PARAM not in query or not self._is_the_views_own():
            return
        names = [name.strip() for name in query[FIELDS_PARAM].split(",") if name.strip()]
        known = list(self.fields)
        unknown = [name for name in names if name not in known]
        if not names or unknown:
            problem = f"unknown field {', '.join(unknown)}" if unknown else "no field named"
            raise serializers.ValidationError({FIELDS_PARAM: [f"{problem}; known fields: {', '.join(known)}."]})
        self.requested_fields = names

    def _is_the_views_own(self) -> bool:
        """``?fields=`` names the response's top-level fields: a serializer nested with the same context
        (``Payload(obj, context=self.context)``) must not apply it to its own, different fields."""
        view = self.context.get("view")
        get_class = getattr(view, "get_serializer_class", None)
        return get_class is None or isinstance(self, get_class())

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.requested_fields is None:
            return data
        return {name: value for name, value in data.items() if name in self.requested_fields}


class HubSerializer(SparseFieldsMixin, serializers.Serializer):
    pass


class HubModelSerializer(SparseFieldsMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: UtcDateTimeField,
    }
