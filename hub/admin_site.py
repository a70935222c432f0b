"""The hub's admin site: Django's, with the side menu and index grouped as Hub, the apps, Messaging, OAuth, Auth.

It replaces the default ``admin.site`` through ``hub.apps.HubAdminConfig`` (Django's documented way), so every
app's ``@admin.register`` lands here unchanged. Kept apart from ``hub/admin.py``, which registers models on it.
"""

from __future__ import annotations

import functools

from django.contrib import admin
from django.http import HttpResponseBadRequest

# Menu groups in order, each with the app labels merged into it. Apps not named here (heating, downloads, …)
# keep their own name and sit between the hub's group and Messaging.
GROUPS_BEFORE_APPS = (("Hub", ("hub",)),)
GROUPS_AFTER_APPS = (
    ("Messaging", ("messaging",)),
    ("OAuth", ("oauth2_provider",)),
    # django-axes' sign-in attempts belong with the users they lock out.
    ("Auth", ("auth", "axes")),
)
GROUP_OF_APP = {label: name for name, labels in GROUPS_BEFORE_APPS + GROUPS_AFTER_APPS for label in labels}


class HubAdminSite(admin.AdminSite):
    site_header = "Hub administration"
    site_title = "Hub admin"
    index_title = "Hub administration"

    def admin_view(self, view, cacheable=False):
        wrapped = super().admin_view(view, cacheable)

        @functools.wraps(wrapped)
        def inner(request, *args, **kwargs):
            try:
                return wrapped(request, *args, **kwargs)
            except OverflowError:
                # SQLite's driver refuses integers beyond 64 bits (e.g. ?node=99999999999999999999 on a list's
                # filter) while the list's queries run; that is the address's fault, not the hub's.
                return HttpResponseBadRequest(
                    "A number in this address is too large. Go back to the list and filter again.",
                    content_type="text/plain; charset=utf-8",
                )

        return inner

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        for app in app_list:
            app["name"] = GROUP_OF_APP.get(app["app_label"], app["name"])
        if app_label is not None:
            # One app's own index page (/admin/<app_label>/) lists that app alone.
            return app_list
        by_label = {app["app_label"]: app for app in app_list}

        def merged(groups):
            result = []
            for _name, labels in groups:
                members = [by_label.pop(label) for label in labels if label in by_label]
                if members:
                    group = members[0]
                    group["models"] = [model for member in members for model in member["models"]]
                    result.append(group)
            return result

        before, after = merged(GROUPS_BEFORE_APPS), merged(GROUPS_AFTER_APPS)
        return before + sorted(by_label.values(), key=lambda app: app["name"].lower()) + after
