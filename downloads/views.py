"""The dashboard's "Downloads" page: an overview for staff; links are made and revoked in the admin."""

from __future__ import annotations

from django.shortcuts import render

from downloads.selectors import link_url, links_overview
from hub.pages.access import staff_required


@staff_required
def downloads_page(request):
    overview = links_overview()
    rows = [{"link": link, "state": link.state(), "url": link_url(link)} for link in overview["links"]]
    return render(
        request,
        "downloads/downloads.html",
        {"counts": overview["counts"], "rows": rows, "attempts": overview["attempts"]},
    )
