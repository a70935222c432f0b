"""The hub's URL map: it wires each app's urls in; the apps never import each other."""

from django.contrib import admin
from django.urls import include, path

from hub import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include("hub.pages.urls")),
]
