"""Sign-in, sign-out, password change, the dashboard, and a placeholder per section not yet landed."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import path

from hub.pages import views
from hub.pages.access import staff_required
from hub.pages.forms import HubAuthenticationForm, HubPasswordChangeForm
from hub.pages.navigation import SECTIONS

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="pages/login.html",
            authentication_form=HubAuthenticationForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    # Django's LogoutView answers POST only: a link or a prefetch cannot sign anyone out.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/",
        auth_views.PasswordChangeView.as_view(
            template_name="pages/password_change.html", form_class=HubPasswordChangeForm
        ),
        name="password_change",
    ),
    path(
        "password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="pages/password_change_done.html"),
        name="password_change_done",
    ),
]

# A placeholder for each section still in ``views.UPCOMING``: an app that lands routes the section's URL name
# to its real page and deletes its entry there, which removes the placeholder.
for _section in (section for section in SECTIONS if section.url_name in views.UPCOMING):
    _guard = staff_required if _section.staff_only else login_required
    urlpatterns.append(
        path(
            f"{_section.url_name}/",
            _guard(views.upcoming_section),
            {"url_name": _section.url_name},
            name=_section.url_name,
        )
    )
