"""Customers, the links issued to them, and the audit of every download attempt."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from downloads.signing import CUSTOMER_ID_PATTERN, MAX_PATH_LENGTH


class Customer(models.Model):
    slug = models.CharField(
        "customer id",
        max_length=64,
        unique=True,
        validators=[RegexValidator(rf"^{CUSTOMER_ID_PATTERN}\Z", "Lower-case letters, digits, '-' and '_' only.")],
        help_text="Appears in every link issued to this customer, e.g. acme.",
    )
    name = models.CharField(max_length=200)
    contact = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True, help_text="Where 'Send link' e-mails this customer's links.")
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA zone, e.g. Europe/Madrid, for times shown to them; empty: the hub's.",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})" if self.name and self.name != self.slug else self.slug


class LinkState(models.TextChoices):
    ACTIVE = "active", "active"
    EXPIRED = "expired", "expired"
    REVOKED = "revoked", "revoked"
    USED_UP = "used_up", "used up"


class DownloadLinkQuerySet(models.QuerySet):
    def in_state(self, state: str, now=None) -> DownloadLinkQuerySet:
        now = now or timezone.now()
        revoked = Q(revoked_at__isnull=False)
        used_up = Q(max_downloads__isnull=False, download_count__gte=F("max_downloads"))
        expired = Q(expires_at__lte=now)
        if state == LinkState.REVOKED:
            return self.filter(revoked)
        if state == LinkState.USED_UP:
            return self.filter(used_up).exclude(revoked)
        if state == LinkState.EXPIRED:
            return self.filter(expired).exclude(revoked | used_up)
        if state == LinkState.ACTIVE:
            return self.exclude(revoked | used_up | expired)
        raise ValueError(f"unknown link state {state!r}")


class DownloadLink(models.Model):
    class Format(models.TextChoices):
        HUB = "hub", "hub (HMAC-SHA256)"
        LEGACY = "legacy", "legacy (old tool)"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="links")
    path = models.CharField("file", max_length=MAX_PATH_LENGTH, help_text="Relative to the downloads root.")
    expires_at = models.DateTimeField()
    max_downloads = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    download_count = models.PositiveIntegerField(default=0)
    last_fetched_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.HUB)
    key_id = models.CharField(max_length=16, blank=True)
    # The URL's first part: how a fetch finds its row. Links with a nonce have a URL of their own (the unique
    # constraint below); links issued without one (legacy, and hub links from before nonces) may share theirs.
    signature = models.CharField(max_length=64, db_index=True, editable=False)
    nonce = models.CharField(max_length=16, blank=True, editable=False)
    # The expiry exactly as signed into the URL (the legacy format's local-time text differs from expires_at).
    expiry_text = models.CharField(max_length=32, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DownloadLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["expires_at"])]
        constraints = [
            # Only rows with a nonce: rows issued before it may share a signature and must all stay valid.
            models.UniqueConstraint(
                fields=["signature"], condition=~Q(nonce=""), name="downloads_link_signature_unique_with_nonce"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer.slug}: {self.path}"

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return LinkState.REVOKED
        if self.max_downloads is not None and self.download_count >= self.max_downloads:
            return LinkState.USED_UP
        if self.expires_at <= now:
            return LinkState.EXPIRED
        return LinkState.ACTIVE


class CountedDownload(models.Model):
    """One download of a capped link that took a unit of its cap, and the Range continuations served as part of it.

    A Range that does not start at byte 0 continues the newest of these from the same address and browser while
    it is recent and has not been handed twice the file's size; otherwise it is a new counted download.
    """

    link = models.ForeignKey(DownloadLink, on_delete=models.CASCADE, related_name="counted_downloads")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    started_at = models.DateTimeField()
    last_at = models.DateTimeField(help_text="The latest request served as part of this download.")
    bytes_served = models.BigIntegerField(default=0, help_text="Of the file's bytes, how many were handed out.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["link", "started_at"])]

    def __str__(self) -> str:
        return f"{self.link_id} from {self.ip} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class DownloadEvent(models.Model):
    """One download attempt, good or bad (written in batches off the request path)."""

    link = models.ForeignKey(DownloadLink, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    customer = models.CharField(max_length=200, blank=True)
    path = models.CharField(max_length=MAX_PATH_LENGTH + 64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    method = models.CharField(max_length=8, blank=True)
    status = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=32, help_text="served, invalid, expired, revoked, used_up, missing, …")
    range = models.CharField(max_length=100, blank=True, help_text="The byte range handed out, e.g. 0-1023/4096.")
    bytes_sent = models.BigIntegerField(default=0)
    accel = models.BooleanField(default=False, help_text="Handed to nginx by X-Accel-Redirect.")
    at = models.DateTimeField(db_index=True)
    # Served attempts are journaled before their bytes go out; the id lets a replay after a kill skip those the
    # database already has (empty for refusals, which are not journaled, and for rows from before the journal).
    attempt_id = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status} {self.customer}/{self.path}"


class LinkSend(models.Model):
    """One attempt to e-mail a link to its customer from the admin: who sent it, to whom, when, and how it went."""

    class Result(models.TextChoices):
        SENT = "sent", "sent"
        FAILED = "failed", "failed"

    link = models.ForeignKey(DownloadLink, on_delete=models.CASCADE, related_name="sends")
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to = models.EmailField()
    at = models.DateTimeField()
    result = models.CharField(max_length=8, choices=Result.choices)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.link_id} to {self.to} at {self.at:%Y-%m-%d %H:%M:%S}: {self.result}"


class AccessLogPosition(models.Model):
    """How far the edge access log (nginx's JSON log of the downloads it served itself) has been read into the audit.

    Written in the same transaction as the batch of audit rows it covers, so a reader killed at any moment resumes
    exactly after the last committed batch. ``inode`` tells a rotated file (a new inode) from the one read so far.
    """

    path = models.CharField(max_length=500, unique=True)
    inode = models.BigIntegerField(default=0)
    offset = models.BigIntegerField(default=0)
    lines_read = models.BigIntegerField(default=0)
    lines_unparseable = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.path} @ {self.inode}:{self.offset}"
