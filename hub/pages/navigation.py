"""The sections of the hub's navigation bar and who sees them.

Each app registers its sections from its ``AppConfig.ready`` (hub names no app)::

    from hub.pages.navigation import Section, register_section

    register_section(Section("heating", "Heating", "Every room's temperature …"), order=10)

A section is a URL name that its app's page urls define (``hub/urls.py`` mounts them). Staff-only pages
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


#: url_name → (its place in the menu, lower first, the section).
_sections: dict[str, tuple[int, Section]] = {}


def register_section(section: Section, *, order: int) -> None:
    """Add (or replace) ``section`` in the menu; equal ``order`` keeps registration order."""
    _sections[section.url_name] = (order, section)


def unregister_section(url_name: str) -> None:
    _sections.pop(url_name, None)


def sections() -> list[Section]:
    """Every registered section, in menu order."""
    return [section for _order, section in sorted(_sections.values(), key=lambda entry: entry[0])]


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
        for section in sections()
        if staff or not section.staff_only
    ]
