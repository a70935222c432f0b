"""The downloads app's page in the dashboard (``hub/urls.py`` mounts it at the site root)."""

from django.urls import path

from downloads import views

urlpatterns = [path("downloads/", views.downloads_page, name="downloads")]
