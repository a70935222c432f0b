"""JSON out, with every datetime in the hub's one format (``hub.timefmt``)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rest_framework.negotiation import DefaultContentNegotiation
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


class SuffixFirstNegotiation(DefaultContentNegotiation):
    """A ``.json`` suffix (or ``?format=json``) is for clients that cannot choose their Accept header, so it
    wins over whatever Accept they send; without one, Accept decides (anything but JSON is a 406)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        requested = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if requested:
            renderer = self.filter_renderers(renderers, requested)[0]  # an unknown format is a 404
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
