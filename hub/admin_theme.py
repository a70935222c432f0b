"""jazzmin's template tags (``{% load jazzmin %}``), with the admin's top search box scoped to the page's model.

jazzmin draws one search box per ``JAZZMIN_SETTINGS["search_model"]`` on every admin page, whatever the page
shows: with ``auth.User`` there, each page said "Search Users…". Its template offers no block to change that, and
its settings are global, so the hub swaps in this library under jazzmin's own name (``TEMPLATES``' ``libraries``
option in hub/settings.py, Django's documented way to replace a library). Every jazzmin tag and filter is
jazzmin's own but two:

* ``get_jazzmin_settings``: its search box searches the model of the page it is on (its list, add, change, delete
  or history page, or a page its admin adds); pages showing no model, or a model without ``search_fields``, have
  none.
* ``get_side_menu`` (the side menu and the index's cards): a model's icon is looked up by the model's own label
  (``axes.accessattempt``), not by the menu group it is shown in (hub/admin_site.py puts axes' models under
  Auth, where jazzmin looked for ``auth.accessattempt`` and drew its generic circle).
"""

from __future__ import annotations

from django import template
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst
from jazzmin.templatetags import jazzmin as jazzmin_tags

register = template.Library()
register.tags.update(jazzmin_tags.register.tags)
register.filters.update(jazzmin_tags.register.filters)


def page_model_admin(request) -> admin.ModelAdmin | None:
    """The ModelAdmin whose page ``request`` is for, else None (the index, an app's index, sign-in pages …)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    # Django's ModelAdmin.get_urls marks each of its views with the admin serving it.
    model_admin = getattr(match.func, "model_admin", None)
    if isinstance(model_admin, admin.ModelAdmin):
        return model_admin
    # A view an admin adds in its own get_urls carries no mark; its URL name starts as Django's do.
    url_name = match.url_name or ""
    for model, candidate in admin.site._registry.items():
        if url_name.startswith(f"{model._meta.app_label}_{model._meta.model_name}_"):
            return candidate
    return None


def page_search(request) -> list[dict[str, str]]:
    """jazzmin's ``search_models_parsed`` for this page: the page's model, if it can be searched here."""
    model_admin = page_model_admin(request)
    if model_admin is None or not model_admin.get_search_fields(request):
        return []
    if not model_admin.has_view_permission(request):
        return []
    opts = model_admin.model._meta
    try:
        url = reverse(f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")
    except NoReverseMatch:
        return []
    return [{"search_url": url, "search_name": capfirst(opts.verbose_name_plural)}]


@register.simple_tag(takes_context=True)
def get_side_menu(context, using: str = "available_apps"):
    menu = jazzmin_tags.get_side_menu(context, using)
    icons = jazzmin_tags.get_settings()["icons"]
    for app in menu:
        for item in app.get("models", []):
            model = item.get("model")
            if model is not None and model._meta.label_lower in icons:
                item["icon"] = icons[model._meta.label_lower]
    return menu


@register.simple_tag
def get_jazzmin_settings(request):
    settings = jazzmin_tags.get_jazzmin_settings(request)
    settings["search_models_parsed"] = page_search(request)
    settings["search_model"] = bool(settings["search_models_parsed"])
    return settings
