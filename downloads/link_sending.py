"""'Send link': e-mail a link and its expiry to its customer, record the attempt, publish ``downloads.link_sent``.

Mail goes through Django's e-mail (EMAIL_BACKEND, from EMAIL_URL: the console in the embedded default, the
operator's SMTP server in production). Every attempt becomes a :class:`~downloads.models.LinkSend` row, ``sent``
only when the backend accepted the message; a refused or failed one is recorded ``failed`` with the reason and
raised as :class:`LinkSendError` for the admin to show. Only accepted mails are published as events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

import messaging
from downloads import events
from downloads.models import DownloadLink, LinkSend, LinkState
from downloads.selectors import link_url
from hub.timefmt import format_utc

logger = logging.getLogger(__name__)

LINK_SENT = "downloads.link_sent"


class LinkSendError(Exception):
    """A send that did not go out; the message says why, for the admin. ``record`` is its failed LinkSend row,
    or None when nothing was attempted (no address, a link that no longer works)."""

    def __init__(self, message: str, *, record: LinkSend | None = None) -> None:
        super().__init__(message)
        self.record = record


@dataclass(frozen=True)
class LinkMail:
    to: str
    subject: str
    body: str


def customer_zone(time_zone: str) -> ZoneInfo:
    """The customer's zone where set and known, else the hub's (HUB_TIME_ZONE)."""
    if time_zone:
        try:
            return ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("downloads: unknown customer time zone %r, using HUB_TIME_ZONE", time_zone)
    return ZoneInfo(settings.HUB_TIME_ZONE)


def format_expiry(expires_at: datetime, zone: ZoneInfo) -> str:
    """``Thursday 31 December 2026, 18:00 CET (Europe/Madrid)``: readable, with the zone named."""
    local = expires_at.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()} ({zone.key})"


def why_not_sendable(link: DownloadLink) -> str | None:
    """Why 'Send link' is not offered for ``link`` (None: it is)."""
    if not link.customer.email:
        return f"customer {link.customer.slug} has no e-mail address (add one on the customer's page)"
    state = LinkState(link.state())
    if state != LinkState.ACTIVE:
        return f"the link is {state.label}: it would not work for the customer"
    return None


def link_mail(link: DownloadLink) -> LinkMail:
    """The message 'Send link' sends for ``link``."""
    customer = link.customer
    zone = customer_zone(customer.time_zone)
    file_name = link.path.rsplit("/", 1)[-1]
    lines = [
        f"Hello {customer.name or customer.slug},",
        "",
        f"your download of {file_name} is ready:",
        "",
        link_url(link),
        "",
        f"The link works until {format_expiry(link.expires_at, zone)}.",
    ]
    if link.max_downloads is not None:
        lines.append(f"It can be downloaded {link.max_downloads} time(s); an interrupted download resumes.")
    if link.note:
        lines += ["", link.note]
    if settings.DOWNLOADS_CONTACT:
        lines += ["", f"Questions: {settings.DOWNLOADS_CONTACT}"]
    return LinkMail(to=customer.email, subject=f"Your download: {file_name}", body="\n".join(lines) + "\n")


def link_send(*, link: DownloadLink, by: AbstractBaseUser | None = None, now: datetime | None = None) -> LinkSend:
    """E-mail ``link`` to its customer; return the ``sent`` LinkSend, or raise :class:`LinkSendError` (with the
    ``failed`` row recorded when the mail was tried)."""
    reason = why_not_sendable(link)
    if reason:
        raise LinkSendError(f"Not sent: {reason}.")
    mail = link_mail(link)
    error = ""
    if not settings.EMAIL_URL:
        error = "no mail server is configured (set EMAIL_URL)"
    else:
        try:
            accepted = EmailMessage(mail.subject, mail.body, settings.DEFAULT_FROM_EMAIL, [mail.to]).send()
        except Exception as exc:  # any backend error (SMTP, socket, TLS): recorded and shown, never a 500
            logger.warning("downloads: sending link %s to %s failed: %s", link.pk, mail.to, exc)
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            if accepted != 1:
                error = "the mail backend accepted no message"
    at = now or timezone.now()
    with transaction.atomic():
        record = LinkSend.objects.create(
            link=link,
            sent_by=by,
            to=mail.to,
            at=at,
            result=LinkSend.Result.FAILED if error else LinkSend.Result.SENT,
            error=error,
        )
        if not error:
            # events.py's own helpers carry a link's fields; this one adds who it went to.
            messaging.publish(
                LINK_SENT,
                {
                    "link": link.pk,
                    "customer": link.customer.slug,
                    "path": link.path,
                    "to": mail.to,
                    "expires_at": format_utc(link.expires_at),
                    "by": by.get_username() if by is not None else None,
                    "at": format_utc(at),
                },
                source=events.SOURCE,
                occurred_at=at,
            )
    if error:
        raise LinkSendError(f"The link was not sent to {mail.to}: {error}.", record=record)
    return record
