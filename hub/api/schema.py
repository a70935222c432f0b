"""drf-spectacular hooks: the OpenAPI document lists each resource once, without its ``.json`` twin."""

from __future__ import annotations


def drop_format_suffix_endpoints(endpoints, **kwargs):
    # DRF's enumerator drops regex suffix routes itself; path()-based ones come through as ``…{format}``.
    return [endpoint for endpoint in endpoints if "{format}" not in endpoint[0]]
