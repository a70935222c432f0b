"""The small HTML page a customer's browser gets when a download link is refused (docs/downloads.md).

Pure (no Django): ``downloads.asgi`` decides when a page is wanted (:func:`prefers_html`) and hands in what it
knows; everything shown is escaped. Clients that do not ask for HTML keep the short text answers.

A page never says more than the text answer it replaces: the one for a link that is not authentic holds nothing
taken from the request, so it is the same page whichever check failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def prefers_html(accept: bytes | None) -> bool:
    """True when an ``Accept`` header names ``text/html`` with a q-value above 0 and no media range with a higher
    one (RFC 9110 §12.5.1). ``*/*`` alone, what curl, wget and scripts send, is no wish for HTML; browsers put
    ``text/html`` first when they navigate."""
    if not accept or b"text/html" not in accept.lower():
        return False  # most downloads: a substring test is all they cost
    html_q = None
    best_other = 0.0
    for media_range in accept.decode("latin-1").lower().split(","):
        name, _, params = media_range.partition(";")
        q = _quality(params)
        if q is None:
            continue  # an unreadable q-value: the range is ignored
        if name.strip() == "text/html":
            html_q = q if html_q is None else max(html_q, q)
        else:
            best_other = max(best_other, q)
    return html_q is not None and html_q > 0 and html_q >= best_other


_QVALUE = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\Z")


def _quality(params: str) -> float | None:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip() == "q":
            value = value.strip()
            return float(value) if _QVALUE.match(value) else None
    return 1.0


@dataclass(frozen=True)
class _Wording:
    title: str
    text: str
    # How the link's expiry is introduced, or "" when the page must not show it.
    expiry_label: str = ""


# By the audit's outcome. "invalid" (not authentic) shows nothing of the link: the same page whatever check failed.
_PAGES = {
    "invalid": _Wording(
        "Link not found",
        "This download link is not valid. Please check that you opened the whole link, exactly as you received it.",
    ),
    "forbidden": _Wording(
        "Not a download link",
        "This address is not a download link. Please check that you opened the whole link, exactly as you received it.",
    ),
    "expired": _Wording(
        "Link expired",
        "This download link has expired, so the file can no longer be downloaded with it.",
        "Expired on",
    ),
    "revoked": _Wording("Link revoked", "This download link has been withdrawn by its sender and no longer works."),
    "used_up": _Wording(
        "Download limit reached",
        "This download link has been used as many times as it allows.",
        "Valid until",
    ),
    "missing": _Wording(
        "File not available",
        "The file this link points to is no longer available.",
        "Link valid until",
    ),
    "error": _Wording(
        "Temporarily unavailable",
        "The download could not be started just now. Please try again in a few minutes.",
    ),
}

#: The outcomes that get a page when the browser asks for HTML (the others keep their text answer).
PAGE_OUTCOMES = frozenset(_PAGES)


def shows_expiry(outcome: str) -> bool:
    """Whether the page for ``outcome`` shows the link's expiry (so is worth looking up the customer's zone)."""
    return bool(_PAGES[outcome].expiry_label)


_MONTHS = ("January February March April May June July August September October November December").split()  # noqa: SIM905 (the list literal is 12 quoted words)
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_EMAIL = re.compile(r"[^@\s<>\"'&]+@[^@\s<>\"'&]+\.[a-z]{2,}\Z", re.IGNORECASE)


def zone_named(name: str, fallback: str) -> ZoneInfo:
    """The zone ``name`` (a customer's), else ``fallback`` (the hub's), else UTC: a bad name never fails a page."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``Saturday 5 December 2026, 18:30 (Europe/Madrid, CET)``: words, not a format a customer must decode."""
    local = moment.astimezone(zone)
    abbreviation = local.tzname() or ""
    zone_text = zone.key if abbreviation in ("", zone.key) else f"{zone.key}, {abbreviation}"
    return (
        f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local.hour:02d}:{local.minute:02d} ({zone_text})"
    )


def render(
    outcome: str, *, status: int, expires_at: datetime | None = None, zone: ZoneInfo | None = None, contact: str = ""
) -> bytes:
    """The page for ``outcome`` (one of :data:`PAGE_OUTCOMES`), UTF-8. ``expires_at`` is shown, in ``zone``, only
    where the outcome's wording has a place for it; ``contact`` is the operator's line (empty: none)."""
    wording = _PAGES[outcome]
    rows = ""
    if wording.expiry_label and expires_at is not None:
        when = local_time(expires_at, zone or ZoneInfo("UTC"))
        rows = f'<p class="when"><span>{escape(wording.expiry_label)}</span> <strong>{escape(when)}</strong></p>'
    contact_html = ""
    if contact:
        shown = escape(contact)
        if _EMAIL.match(contact):
            shown = f'<a href="mailto:{escape(contact, quote=True)}">{shown}</a>'
        contact_html = f'<p class="contact">Questions? Contact {shown}</p>'
    page = _PAGE.format(
        title=escape(wording.title), text=escape(wording.text), when=rows, contact=contact_html, status=status
    )
    return page.encode("utf-8")


# The hub's look without loading anything: Bootstrap's colours and type, the dark top bar with the hub's mark,
# light or dark as the system says. Inline only, as the Content-Security-Policy the app sends allows.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex">
<title>{title} · Hub</title>
<style>
:root{{color-scheme:light dark;--bg:#f8f9fa;--card:#fff;--text:#212529;--muted:#495057;--border:#dee2e6;
--link:#0a58ca}}
@media (prefers-color-scheme:dark){{:root{{--bg:#2b3035;--card:#212529;--text:#dee2e6;--muted:#adb5bd;
--border:#495057;--link:#6ea8fe}}}}
*{{box-sizing:border-box}}
body{{margin:0;min-height:100vh;background:var(--bg);color:var(--text);line-height:1.5;font-size:1rem;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans","Liberation Sans",Arial,
sans-serif}}
header{{background:#212529;color:#fff;padding:.5rem 1rem}}
header span{{display:inline-flex;align-items:center;gap:.5rem;font-weight:600;font-size:1.25rem}}
main{{max-width:36rem;margin:2rem auto;padding:0 1rem}}
.card{{background:var(--card);border:1px solid var(--border);border-radius:.5rem;padding:1.25rem 1.5rem}}
h1{{font-size:1.5rem;font-weight:500;margin:0 0 .75rem}}
p{{margin:0 0 .75rem}}
.when span,.contact,.status{{color:var(--muted)}}
.status{{font-size:.875rem;margin:1rem 0 0}}
a{{color:var(--link)}}
</style>
</head>
<body>
<header><span><svg width="24" height="24" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="6"
fill="#0d6efd"/><path d="M8 24V8h3v6.5h10V8h3v16h-3v-6.5H11V24z" fill="#fff"/></svg>Hub</span></header>
<main>
<div class="card">
<h1>{title}</h1>
<p>{text}</p>
{when}
{contact}
<p class="status">HTTP {status}</p>
</div>
</main>
</body>
</html>
"""

#: The headers a page goes out with (besides its length): nothing but the page itself may load.
PAGE_HEADERS = (
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"vary", b"accept"),
)
