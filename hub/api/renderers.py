"""JSON out, with every datetime in the hub's one format (``hub.timefmt``)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from hub.timefmt import format_utc


class HubJSONEncoder(JSONEncoder):
    def default(self, obj):
        if isinstance(obj, datetime):
            # A naive value can only come from USE_TZ=False code paths; read it in the current zone.
            aware = obj if timezone.is_aware(obj) else timezone.make_aware(obj)
            return format_utc(aware)
        return super().default(obj)


class HubJSONRenderer(JSONRenderer):
    encoder_class = HubJSONEncoder
