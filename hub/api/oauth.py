"""The OAuth 2.0 endpoints under ``/o/``: django-oauth-toolkit's, minus its self-service application pages.

Applications are registered by an admin in the Django admin. Scripts use the device authorization grant
(RFC 8628): they call ``device-authorization/`` and ``token/``; ``device/`` is the page where the signed-in
user approves the code a script shows.
"""

from oauth2_provider import urls as dot_urls

app_name = "oauth2_provider"  # DOT's views reverse their own names in this namespace

urlpatterns = list(dot_urls.base_urlpatterns)
