"""The sections of the hub's navigation bar and who sees them.

Each section is a URL name that its app's page urls define (``hub/urls.py`` mounts them). Staff-only pages
guard themselves with ``hub.pages.access.staff_required``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from hub.pages.access import user_is_staff


@dataclass(frozen=True)
class Section:
    url_name: str
    label: str
    #: What the section is for, shown on the dashboard's card.
    summary: str
    staff_only: bool = False


SECTIONS: tuple[Section, ...] = (
    Section("heating", "Heating", "Every room's temperature and heater, and the setpoint you choose."),
    Section("live", "Live", "Readings and events as they happen, pushed to this page without reloading."),
    Section("downloads", "Downloads", "Expiring signed links for customers and the audit of every download.", True),
    Section("events", "Events", "The stored event log: what happened in the hub, when and from where.", True),
)


@dataclass(frozen=True)
class NavigationItem:
    section: Section
    url: str
    active: bool


def navigation_for(user, *, current_url_name: str | None = None) -> list[NavigationItem]:
    """The sections ``user`` may open, in menu order; nothing for an anonymous visitor."""
    if not user.is_authenticated:
        return []
    staff = user_is_staff(user)
    return [
        NavigationItem(section=section, url=reverse(section.url_name), active=section.url_name == current_url_name)
        for section in SECTIONS
        if staff or not section.staff_only
    ]
