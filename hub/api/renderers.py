"""JSON out, with every datetime in the hub's one format (``hub.timefmt``)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rest_framework import serializers
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
    wins over whatever Accept they send; without one, Accept decides (anything but JSON is a 406).

    ``?format=`` is a query parameter like any other: a value naming none of the view's formats (empty
    included) is a 400 naming ``format``, as the schema's enum of them says (DRF answers 404 to an unknown one
    and ignores an empty one). An unknown ``.suffix`` on the path stays a 404: that URL names nothing."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if format_suffix:
            renderer = self.filter_renderers(renderers, format_suffix)[0]  # an unknown suffix is a 404
            return renderer, renderer.media_type
        param = self.settings.URL_FORMAT_OVERRIDE
        if param and param in request.query_params:
            requested = request.query_params[param]
            known = [renderer.format for renderer in renderers]
            matching = [renderer for renderer in renderers if renderer.format == requested]
            if not matching:
                raise serializers.ValidationError({param: [f"Expected one of {', '.join(known)}, not {requested!r}."]})
            return matching[0], matching[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
