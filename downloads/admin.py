"""Admin for customers, their download links (chooser, URL with a copy button, audit trail) and the audit."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from downloads.models import CountedDownload, Customer, DownloadEvent, DownloadLink, LinkState
from downloads.selectors import downloads_root_files, link_url
from downloads.services import LinkError, link_create, links_revoke

_STATE_BADGE = {
    LinkState.ACTIVE: "success",
    LinkState.EXPIRED: "secondary",
    LinkState.REVOKED: "danger",
    LinkState.USED_UP: "warning",
}


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "contact", "link_count"]
    search_fields = ["slug", "name", "contact", "notes"]

    def get_readonly_fields(self, request, obj=None):
        # The id is signed into every link the customer holds: renaming it would break them all.
        return ["slug"] if obj is not None else []

    @admin.display(description="links")
    def link_count(self, customer: Customer) -> int:
        return customer.links.count()


def _default_expiry():
    return (timezone.now() + timedelta(days=settings.DOWNLOADS_DEFAULT_EXPIRY_DAYS)).replace(second=0, microsecond=0)


class DownloadLinkAddForm(forms.ModelForm):
    """The add form: the file is chosen from what the downloads root holds, never typed."""

    path = forms.ChoiceField(label="File", help_text="Files under the downloads root (DOWNLOADS_ROOT).")

    class Meta:
        model = DownloadLink
        fields = ["customer", "path", "expires_at", "max_downloads", "note", "format"]

    @staticmethod
    def field_names() -> list[str]:
        # The old tool's format is offered only where its secret is configured.
        names = DownloadLinkAddForm.Meta.fields
        return names if settings.DOWNLOADS_LEGACY_SECRET else [name for name in names if name != "format"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "format" in self.fields:
            self.fields["format"].help_text = (
                "Legacy: the old tool's URL format, for customers still using it. Only one legacy link can exist "
                "per customer, file and expiry (their URLs would be the same)."
            )
        files = downloads_root_files()
        self.fields["path"].choices = [("", "---------")] + [(name, name) for name in files]
        if not files:
            self.fields["path"].help_text = f"The downloads root {settings.DOWNLOADS_ROOT} holds no files yet."
        self.fields["expires_at"].initial = _default_expiry

    def clean_max_downloads(self):
        max_downloads = self.cleaned_data["max_downloads"]
        if max_downloads is not None and max_downloads < 1:
            raise forms.ValidationError("At least 1, or empty for no limit.")
        return max_downloads

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return LinkState.choices

    def queryset(self, request, queryset):
        if self.value() in LinkState.values:
            return queryset.in_state(self.value())
        return queryset


class DownloadEventInline(admin.TabularInline):
    model = DownloadEvent
    verbose_name = "download attempt"
    verbose_name_plural = "audit trail"
    fields = ["at", "status", "outcome", "ip", "user_agent", "range", "bytes_sent", "accel"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DownloadLink)
class DownloadLinkAdmin(admin.ModelAdmin):
    class Media:
        js = ["downloads/copy-link.js"]

    list_display = ["customer", "path", "expires_at", "state_badge", "downloads", "last_fetched_at"]
    list_filter = [StateFilter, "customer"]
    search_fields = ["customer__slug", "customer__name", "path", "note"]
    list_select_related = ["customer"]
    actions = ["revoke_selected"]
    inlines = [DownloadEventInline]
    readonly_fields = [
        "url_with_copy_button",
        "customer",
        "path",
        "expires_at",
        "state_badge",
        "download_count",
        "last_fetched_at",
        "revoked_at",
        "format",
        "key_id",
        "created_by",
        "created_at",
    ]
    fields = [
        "url_with_copy_button",
        "customer",
        "path",
        "expires_at",
        "state_badge",
        "max_downloads",
        "download_count",
        "last_fetched_at",
        "revoked_at",
        "note",
        "format",
        "key_id",
        "created_by",
        "created_at",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DownloadLinkAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        return DownloadLinkAddForm.field_names() if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        # Customer, file and expiry are signed into the URL: a link is revoked and made anew, never edited.
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return [] if obj is None else self.inlines

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = link_create(
            customer=form.cleaned_data["customer"],
            path=form.cleaned_data["path"],
            expires_at=form.cleaned_data["expires_at"],
            max_downloads=form.cleaned_data["max_downloads"],
            note=form.cleaned_data["note"],
            created_by=request.user,
            legacy=form.cleaned_data.get("format") == DownloadLink.Format.LEGACY,
        )
        # The admin goes on with the form's instance (its log entry, the redirect to the link's page): it becomes
        # the row link_create wrote, with the signature, nonce and expiry the service settled on.
        obj.pk = created.pk
        obj.refresh_from_db()
        obj._state.adding = False

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except LinkError as exc:
            # The file vanished or the expiry passed between the form's checks and saving, or a legacy link with
            # the same fields exists (the message names it).
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def response_add(self, request, obj, post_url_continue=None):
        # Straight to the link's page, where its URL waits with a copy button.
        self.message_user(request, format_html("Link created: <code>{}</code>", link_url(obj)), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:downloads_downloadlink_change", args=[obj.pk]))

    @admin.display(description="URL")
    def url_with_copy_button(self, link: DownloadLink) -> str:
        if link.pk is None:
            return "-"
        return format_html(
            '<div class="input-group" style="max-width:60rem">'
            '<input type="text" readonly class="form-control" id="download-link-url" value="{}">'
            '<div class="input-group-append"><button type="button" class="btn btn-outline-primary"'
            ' id="copy-download-link" data-copy-target="download-link-url">Copy</button></div></div>',
            link_url(link),
        )

    @admin.display(description="state")
    def state_badge(self, link: DownloadLink) -> str:
        state = LinkState(link.state())
        return format_html('<span class="badge badge-{}">{}</span>', _STATE_BADGE[state], state.label)

    @admin.display(description="downloads", ordering="download_count")
    def downloads(self, link: DownloadLink) -> str:
        if link.max_downloads is None:
            return str(link.download_count)
        return f"{link.download_count} / {link.max_downloads}"

    @admin.action(description="Revoke the selected links", permissions=["change"])
    def revoke_selected(self, request, queryset) -> None:
        revoked = links_revoke(links=list(queryset.select_related("customer")), by=request.user)
        self.message_user(request, f"{revoked} link(s) revoked.", messages.SUCCESS)


class RecordAdmin(admin.ModelAdmin):
    """What the hub records by itself: viewable and searchable, never added, edited or deleted by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CountedDownload)
class CountedDownloadAdmin(RecordAdmin):
    """The downloads that took a unit of a capped link's cap, with the bytes their Range continuations served."""

    list_display = ["link", "started_at", "last_at", "ip", "user_agent", "bytes_served"]
    search_fields = ["link__customer__slug", "link__path", "ip", "user_agent"]
    date_hierarchy = "started_at"
    list_select_related = ["link__customer"]


@admin.register(DownloadEvent)
class DownloadEventAdmin(RecordAdmin):
    list_display = ["at", "status", "outcome", "customer", "path", "ip", "range", "bytes_sent", "accel"]
    list_filter = ["outcome", "status", "accel"]
    search_fields = ["customer", "path", "ip", "user_agent"]
    date_hierarchy = "at"
    list_select_related = ["link"]
