"""The page ``more_info`` points at: one anchored section per kind of error the API answers."""

from __future__ import annotations

from django.http import HttpResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.errors import ERROR_KINDS

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hub API errors</title><link rel="stylesheet" href="{css}"></head>
<body class="container py-4"><h1 class="h3">Errors of the hub's API</h1>
<p>Every error under <code>/v1/</code> answers its HTTP status and a JSON body
<code>{{"message": "…", "more_info": "…"}}</code>; <code>more_info</code> links to a section below. Invalid input
adds <code>fields</code>, naming each field or query parameter with its problems. With
<code>?suppress_response_code=true</code> the status is always 200 and the body carries
<code>response_code</code>. The OpenAPI description is at <a href="{schema}">{schema}</a>, browsable at
<a href="{docs}">{docs}</a>.</p>
{sections}
</body></html>"""


@require_safe
def error_docs(request):
    sections = format_html_join(
        "\n",
        '<section id="{}" class="mb-4"><h2 class="h5">{} <span class="badge text-bg-secondary">{}</span></h2>'
        "<p>{}</p></section>",
        ((kind.anchor, kind.title, kind.status, kind.advice) for kind in ERROR_KINDS),
    )
    page = format_html(
        _PAGE,
        css=static("vendor/bootstrap/css/bootstrap.min.css"),
        schema=reverse("api-schema"),
        docs=reverse("api-docs"),
        sections=sections,
    )
    return HttpResponse(page)


class ApiRootView(APIView):
    """``/v1/``: where to read about the API, for a client that only knows the base URL."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request):
        def link(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        return Response(
            {
                "schema": link("api-schema"),
                "docs": link("api-docs"),
                "errors": link("api-errors-docs"),
                "search": link("api-search"),
                "me": link("api-users-me"),
                "token": link("oauth2_provider:token"),
            }
        )
