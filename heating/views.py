"""The dashboard's Heating page: every node with its latest values, signal, last-heard age and state, the modem
link, and (with ``hub.send_commands``) a switch per output. The browser renders it from ``heating_overview`` and
refreshes it when a ``heating.*`` event arrives over ``/ws/push`` (and every 30 s, should the socket be down)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render

from heating.selectors import heating_overview


@login_required
def heating_page(request):
    return render(request, "heating/heating.html", {"overview": heating_overview(user=request.user)})


@login_required
def heating_state(request):
    return JsonResponse(heating_overview(user=request.user))
