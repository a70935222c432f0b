"""The dashboard shell; sign-in and password views are Django's own, each section's page is its app's."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from hub.pages.navigation import navigation_for


@login_required
def dashboard(request):
    return render(request, "pages/dashboard.html", {"items": navigation_for(request.user)})
