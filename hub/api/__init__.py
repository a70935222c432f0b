"""The REST conventions every app's API under ``/v1/`` reuses (docs/api-rules.md).

An app builds its API from these pieces and wires it into ``hub/urls.py`` under ``v1/``:

* ``hub.api.viewsets`` — ``HubReadOnlyViewSet`` / ``HubModelViewSet``: list, detail and ``/count``
  with the same filters, limit/offset pagination, ``?fields=``; verbs as ``@action(detail=True)``.
* ``hub.api.routers.HubRouter`` — URLs without trailing slash, the id pattern, the ``.json`` suffix.
* ``hub.api.serializers.HubModelSerializer`` — the hub's date format in and out, ``?fields=``.
* ``hub.api.filters`` — ``since`` (inclusive) / ``until`` (exclusive) and exact-match filters; ``?q=`` is
  DRF's SearchFilter over the view's ``search_fields``.
* ``hub.api.permissions.ScopedPermission`` — "the user may" AND "the token has the scope".
* ``hub.api.search.register_search_provider`` — join ``/v1/search?q=`` from an ``AppConfig.ready``.
* ``hub.api.errors`` / ``hub.api.middleware`` — the ``{"message", "more_info"}`` body on every error,
  ``?suppress_response_code=true`` and the POST-only method override; ``hub.api.parsers`` bounds JSON bodies.
* ``hub.api.schema`` — the OpenAPI document's share (error body, scopes, ``?fields=``); ``hub.api.oauth`` —
  the ``/o/`` endpoints (device authorization grant for scripts).

This package's ``__init__`` imports nothing, so settings can read ``hub.api.scopes``.
"""
