"""The dashboard shell and the sections' placeholder pages; sign-in and password views are Django's own."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from hub.pages.navigation import SECTIONS, navigation_for

# What each section will show once its part of the hub lands; the placeholder says so honestly.
UPCOMING = {
    "downloads": [
        "the expiring signed links handed to customers, with who created them and until when they work;",
        "every download attempt, served or refused, from the audit log.",
    ],
}


@login_required
def dashboard(request):
    return render(request, "pages/dashboard.html", {"items": navigation_for(request.user)})


def upcoming_section(request, *, url_name: str):
    section = next(section for section in SECTIONS if section.url_name == url_name)
    return render(request, "pages/upcoming_section.html", {"section": section, "upcoming": UPCOMING[url_name]})
