"""Sign-in, sign-out, password change and the dashboard; each section's page comes from its app."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from hub.pages import views
from hub.pages.forms import HubAuthenticationForm, HubPasswordChangeForm

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
