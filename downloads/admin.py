"""Admin for customers, their download links (chooser or upload, URL with a copy button, revoke, send by e-mail,
audit trail) and the audit."""

from __future__ import annotations

from datetime import timedelta
from functools import update_wrapper

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from downloads import uploads
from downloads.edge import EdgeUnavailable
from downloads.link_sending import LinkSendError, link_mail, link_send, why_not_sendable
from downloads.models import (
    AccessLogPosition,
    CountedDownload,
    Customer,
    DownloadEvent,
    DownloadLink,
    LinkSend,
    LinkState,
)
from downloads.selectors import downloads_root_files, link_url, links_ever_served
from downloads.services import LinkError, link_create, link_revoke, links_delete, links_revoke
from hub.env import parse_time_zone


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ["slug", "name", "email", "contact", "time_zone", "notes"]

    def clean_time_zone(self) -> str:
        time_zone = self.cleaned_data["time_zone"].strip()
        if time_zone:
            try:
                parse_time_zone(time_zone)
            except ValueError:
                raise forms.ValidationError(
                    f"{time_zone!r} is not a time zone name the hub knows, e.g. Europe/Madrid or America/New_York."
                ) from None
        return time_zone


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ["slug", "name", "email", "contact", "link_count"]
    search_fields = ["slug", "name", "email", "contact", "notes"]

    def get_readonly_fields(self, request, obj=None):
        # The id is signed into every link the customer holds: renaming it would break them all.
        return ["slug"] if obj is not None else []

    @admin.display(description="links")
    def link_count(self, customer: Customer) -> int:
        return customer.links.count()


def _default_expiry():
    return (timezone.now() + timedelta(days=settings.DOWNLOADS_DEFAULT_EXPIRY_DAYS)).replace(second=0, microsecond=0)


class DownloadLinkAddForm(forms.ModelForm):
    """The add form: the file is chosen from what the downloads root holds, or uploaded into it here; never typed."""

    path = forms.ChoiceField(label="File", required=False, help_text="Files under the downloads root (DOWNLOADS_ROOT).")
    upload = forms.FileField(
        label="Or upload a file",
        required=False,
        help_text="Stored in the downloads root and used for this link.",
    )
    upload_name = forms.CharField(
        label="Name in the downloads root",
        required=False,
        max_length=uploads.MAX_NAME_BYTES,
        help_text="Empty: the uploaded file's own name. No '/', '..' or control characters.",
    )
    upload_replace = forms.BooleanField(
        label="Replace the existing file",
        required=False,
        help_text="Needed when a file of that name is already in the downloads root: links to it then serve the "
        "new file.",
    )

    class Meta:
        model = DownloadLink
        fields = ["customer", "path", "expires_at", "max_downloads", "note", "format"]

    UPLOAD_FIELDS = ["upload", "upload_name", "upload_replace"]

    @staticmethod
    def field_names() -> list[str]:
        names = list(DownloadLinkAddForm.Meta.fields)
        names[2:2] = DownloadLinkAddForm.UPLOAD_FIELDS  # right after the chooser
        # The old tool's format is offered only where its secret is configured.
        return names if settings.DOWNLOADS_LEGACY_SECRET else [name for name in names if name != "format"]

    #: Set per request (DownloadLinkAdmin.get_form) from the upload handler: a file over the limit, or a disk that
    #: filled up while receiving it.
    upload_problem: str | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.DOWNLOADS_UPLOAD_MAX
        self.fields["upload"].help_text += f" At most {limit:,} bytes ({limit / 2**30:.2f} GiB)."
        if "format" in self.fields:
            self.fields["format"].help_text = (
                "Legacy: the old tool's URL format, for customers still using it. Only one legacy link can exist "
                "per customer, file and expiry (their URLs would be the same)."
            )
        files = downloads_root_files()
        self.fields["path"].choices = [("", "---------")] + [(name, name) for name in files]
        if not files:
            empty = f"The downloads root {settings.DOWNLOADS_ROOT} holds no files yet: upload one below."
            self.fields["path"].help_text = empty
        self.fields["expires_at"].initial = _default_expiry

    def clean(self):
        cleaned = super().clean()
        uploaded = cleaned.get("upload")
        if self.upload_problem:
            self.add_error("upload", self.upload_problem)
            return cleaned
        if uploaded is None:
            if not cleaned.get("path") and "path" not in self.errors:
                self.add_error("path", "Choose a file, or upload one.")
            return cleaned
        if cleaned.get("path"):
            self.add_error("path", "Choose a file or upload one, not both.")
            return cleaned
        name = cleaned.get("upload_name") or uploaded.name
        problem = uploads.name_problem(name)
        if problem:
            self.add_error("upload_name" if cleaned.get("upload_name") else "upload", f"{name!r}: {problem}.")
        elif uploads.is_folder_in_root(name):
            self.add_error("upload_name", f"{name!r} is a folder in the downloads root: give the upload another name.")
        elif uploads.exists_in_root(name) and not cleaned.get("upload_replace"):
            self.add_error(
                "upload_replace",
                f"A file named {name!r} is already in the downloads root. Tick 'Replace the existing file' to "
                "overwrite it (links to it will serve the new file), or give the upload another name. "
                "Choose the file again: a browser does not keep it.",
            )
        else:
            cleaned["path"] = name
        return cleaned

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


class ReadOnlyInline(admin.TabularInline):
    """Rows the hub records by itself, shown on their link's page: never added, edited or deleted there."""

    extra = 0
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DownloadEventInline(ReadOnlyInline):
    model = DownloadEvent
    verbose_name = "download attempt"
    verbose_name_plural = "audit trail"
    fields = ["at", "status", "outcome", "ip", "user_agent", "range", "bytes_sent", "accel"]


class LinkSendInline(ReadOnlyInline):
    model = LinkSend
    verbose_name = "e-mail sent"
    verbose_name_plural = "sent by e-mail"
    fields = ["at", "to", "result", "error", "sent_by"]


def served_refusal(served: dict[int, int], links) -> str:
    """The message refusing to delete links that were downloaded."""
    named = ", ".join(f"#{link.pk} ({link}, {served[link.pk]} download(s))" for link in links if link.pk in served)
    return (
        f"Not deleted: {named} {'was' if len(served) == 1 else 'were'} downloaded, and the audit must keep the "
        "link its downloads were made with. Revoke instead: the link stops working at once and its audit stays."
    )


@admin.register(DownloadLink)
class DownloadLinkAdmin(admin.ModelAdmin):
    class Media:
        js = ["downloads/copy-link.js"]
        css = {"all": ["downloads/admin.css"]}

    list_display = ["customer", "path", "expires_at", "state_badge", "downloads", "last_fetched_at"]
    list_filter = [StateFilter, "customer"]
    search_fields = ["customer__slug", "customer__name", "path", "note"]
    list_select_related = ["customer"]
    actions = ["revoke_selected", "delete_selected"]
    inlines = [LinkSendInline, DownloadEventInline]
    change_form_template = "admin/downloads/downloadlink/change_form.html"
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

    # --- URLs: the add view receives uploads; a link's own page has Revoke and Send link ----------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        own = [
            path("add/", self._receiving_uploads(self.add_view), name=f"{prefix}_add"),
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name=f"{prefix}_revoke",
            ),
            path("<path:object_id>/send/", self.admin_site.admin_view(self.send_view), name=f"{prefix}_send"),
        ]
        return own + super().get_urls()

    def _receiving_uploads(self, view):
        """``view`` with the downloads root's upload handler in place before the request's body is read.

        Django reads the body for its CSRF check, after which the handlers cannot change: so this wrapper is
        exempt from the middleware's check and ``admin_view`` (csrf_protect) makes it once the handler is set.
        """
        protected = self.admin_site.admin_view(view)

        def receiving(request, *args, **kwargs):
            # Only staff who may add links write into the root; anyone else's file is read and dropped.
            allowed = self.admin_site.has_permission(request) and self.has_add_permission(request)
            handler = uploads.DownloadsRootUploadHandler(request, accept=allowed)
            request.upload_handlers = [handler]
            request.downloads_upload = handler
            try:
                return protected(request, *args, **kwargs)
            finally:
                handler.discard()  # whatever was not moved into place (a refused form, an error) is removed

        receiving.csrf_exempt = True
        return update_wrapper(receiving, view)

    # --- the add form ----------------------------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change, **kwargs)
        kwargs["form"] = DownloadLinkAddForm
        form = super().get_form(request, obj, change, **kwargs)
        handler = getattr(request, "downloads_upload", None)
        return type(form.__name__, (form,), {"upload_problem": handler.problem if handler else None})

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
        uploaded = form.cleaned_data.get("upload")
        if uploaded is not None:
            stored = uploads.store(uploaded, form.cleaned_data["path"], replace=form.cleaned_data["upload_replace"])
            self.message_user(request, f"Uploaded {stored.name} into the downloads root.", messages.SUCCESS)
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
        except (LinkError, uploads.UploadError) as exc:
            # The file vanished or the expiry passed between the form's checks and saving, or a legacy link with
            # the same fields exists (the message names it), or an upload's name was taken meanwhile.
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def response_add(self, request, obj, post_url_continue=None):
        # Straight to the link's page, where its URL waits with a copy button.
        self.message_user(request, format_html("Link created: <code>{}</code>", link_url(obj)), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:downloads_downloadlink_change", args=[obj.pk]))

    # --- the link's page: Revoke and Send link -----------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        link = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if link is not None:
            extra_context.update(self._link_actions(request, link))
        return super().change_view(request, object_id, form_url, extra_context)

    def _link_actions(self, request, link: DownloadLink) -> dict:
        can_change = self.has_change_permission(request, link)
        return {
            "revoke_url": reverse("admin:downloads_downloadlink_revoke", args=[link.pk])
            if can_change and link.revoked_at is None
            else None,
            "send_url": reverse("admin:downloads_downloadlink_send", args=[link.pk])
            if can_change and why_not_sendable(link) is None
            else None,
            "send_unavailable": why_not_sendable(link) if can_change else None,
            # has_delete_permission hides Delete for a downloaded link; this says why in its place.
            "delete_refused": "the link was downloaded: revoke it instead (the audit keeps its link)"
            if super().has_delete_permission(request, link) and links_ever_served([link.pk])
            else None,
        }

    def _link_or_404(self, request, object_id) -> DownloadLink:
        link = self.get_object(request, unquote(object_id))
        if link is None:
            raise Http404(f"No download link with id {object_id!r}.")
        if not self.has_change_permission(request, link):
            raise PermissionDenied
        return link

    def _confirmation(self, request, link: DownloadLink, template: str, **context) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "object": link,
            "title": context.pop("title"),
            "change_url": reverse("admin:downloads_downloadlink_change", args=[link.pk]),
            **context,
        }
        return TemplateResponse(request, template, context)

    def revoke_view(self, request, object_id):
        """GET: what revoking does, and a button; POST: revoke (services.link_revoke)."""
        link = self._link_or_404(request, object_id)
        change_url = reverse("admin:downloads_downloadlink_change", args=[link.pk])
        if request.method == "POST":
            try:
                revoked = link_revoke(link=link, by=request.user)
            except EdgeUnavailable as error:
                self.message_user(request, str(error), messages.ERROR)
                return HttpResponseRedirect(change_url)
            if revoked:
                self.log_change(request, link, "Revoked.")
                self.message_user(
                    request, f"Link #{link.pk} ({link}) is revoked: it no longer works.", messages.SUCCESS
                )
            else:
                self.message_user(request, f"Link #{link.pk} was already revoked.", messages.WARNING)
            return HttpResponseRedirect(change_url)
        if link.revoked_at is not None:
            self.message_user(request, f"Link #{link.pk} is already revoked.", messages.INFO)
            return HttpResponseRedirect(change_url)
        return self._confirmation(
            request, link, "admin/downloads/downloadlink/revoke_confirmation.html", title="Revoke this link?"
        )

    def send_view(self, request, object_id):
        """GET: the mail about to go out, and a button; POST: send it (downloads.link_sending.link_send)."""
        link = self._link_or_404(request, object_id)
        change_url = reverse("admin:downloads_downloadlink_change", args=[link.pk])
        reason = why_not_sendable(link)
        if reason:
            self.message_user(request, f"Send link is not available: {reason}.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        if request.method == "POST":
            try:
                record = link_send(link=link, by=request.user)
            except LinkSendError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"The link was e-mailed to {record.to}.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        return self._confirmation(
            request,
            link,
            "admin/downloads/downloadlink/send_confirmation.html",
            title="E-mail this link to the customer?",
            mail=link_mail(link),
            sends=list(link.sends.all()[:5]),
        )

    # --- deleting: refused for links that were downloaded ----------------------------------------------------

    def has_delete_permission(self, request, obj=None) -> bool:
        # A downloaded link's page offers no Delete (the bulk action and the URL are refused with a message below).
        if obj is not None and links_ever_served([obj.pk]):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        link = self.get_object(request, unquote(object_id))
        if link is not None:
            served = links_ever_served([link.pk])
            if served:
                self.message_user(request, served_refusal(served, [link]), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:downloads_downloadlink_change", args=[link.pk]))
        try:
            return super().delete_view(request, object_id, extra_context)
        except EdgeUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:downloads_downloadlink_change", args=[link.pk]))

    def delete_model(self, request, obj) -> None:
        links_delete(links=[obj])  # also takes it off the edge: nginx must stop serving it at once

    def delete_queryset(self, request, queryset) -> None:
        links_delete(links=list(queryset))

    @admin.action(description="Delete the selected links (never downloaded ones only)", permissions=["delete"])
    def delete_selected(self, request, queryset):
        links = list(queryset.select_related("customer"))
        served = links_ever_served([link.pk for link in links])
        if served:
            self.message_user(request, served_refusal(served, links), messages.ERROR)
            return None  # back to the list, nothing deleted
        try:
            return delete_selected(self, request, queryset)
        except EdgeUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
            return None

    def get_actions(self, request):
        actions = super().get_actions(request)
        # The site-wide delete_selected would skip the check above: this admin's own action takes its place.
        if "delete_selected" in actions:
            actions["delete_selected"] = self.get_action("delete_selected")
        return actions

    def get_action(self, action):
        if action == "delete_selected":
            function = type(self).delete_selected
            return function, action, function.short_description
        return super().get_action(action)

    # --- columns ------------------------------------------------------------------------------------------

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
        # Classes of downloads/static/downloads/admin.css: the theme's badge-* are unstyled (Bootstrap 5).
        state = LinkState(link.state())
        return format_html(
            '<span class="link-state link-state-{}" data-state="{}">{}</span>', state.value, state.value, state.label
        )

    @admin.display(description="downloads", ordering="download_count")
    def downloads(self, link: DownloadLink) -> str:
        if link.max_downloads is None:
            return str(link.download_count)
        return f"{link.download_count} / {link.max_downloads}"

    @admin.action(description="Revoke the selected links", permissions=["change"])
    def revoke_selected(self, request, queryset) -> None:
        try:
            revoked = links_revoke(links=list(queryset.select_related("customer")), by=request.user)
        except EdgeUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
            return
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


@admin.register(LinkSend)
class LinkSendAdmin(RecordAdmin):
    """Every 'Send link' attempt: who e-mailed which link to whom, when, and whether the mail server took it."""

    list_display = ["at", "link", "to", "result", "sent_by", "error"]
    list_filter = ["result"]
    search_fields = ["to", "link__customer__slug", "link__path", "error"]
    date_hierarchy = "at"
    list_select_related = ["link__customer", "sent_by"]


@admin.register(AccessLogPosition)
class AccessLogPositionAdmin(RecordAdmin):
    """How far nginx's edge access log has been read into the audit (one row per log file)."""

    list_display = ["path", "inode", "offset", "lines_read", "lines_unparseable", "updated_at"]
    search_fields = ["path"]
