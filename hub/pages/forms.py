"""Django's own auth forms, with Bootstrap's classes on their inputs."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm


class BootstrapFieldsMixin:
    """Give every input Bootstrap's ``form-control`` class, and ``is-invalid`` once the field has an error."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            css_class = "form-check-input" if isinstance(field.widget, forms.CheckboxInput) else "form-control"
            field.widget.attrs["class"] = css_class

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields and "is-invalid" not in self.fields[name].widget.attrs["class"]:
                self.fields[name].widget.attrs["class"] += " is-invalid"


class HubAuthenticationForm(BootstrapFieldsMixin, AuthenticationForm):
    pass


class HubPasswordChangeForm(BootstrapFieldsMixin, PasswordChangeForm):
    pass
