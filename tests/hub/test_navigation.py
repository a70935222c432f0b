"""The navigation bar's sections come from the apps (registered from their AppConfig.ready), in their order."""

from __future__ import annotations

import pytest

from hub.pages.navigation import Section, navigation_for, register_section, sections, unregister_section


def test_the_apps_register_their_sections_in_the_menu_order_hub_used_to_name():
    assert [(section.url_name, section.staff_only) for section in sections()] == [
        ("home", False),
        ("live", False),
        ("devices", True),
        ("downloads", True),
        ("events", True),
    ]


@pytest.mark.django_db
def test_a_registered_section_takes_its_place_and_leaves_when_unregistered(household_user, staff_user):
    register_section(Section("healthz", "Health", "How the hub is doing.", staff_only=True), order=25)
    try:
        assert [item.section.label for item in navigation_for(staff_user)] == [
            "Home",
            "Live",
            "Devices",
            "Health",
            "Downloads",
            "Events",
        ]
        assert [item.section.label for item in navigation_for(household_user)] == ["Home", "Live"]
        assert next(item.url for item in navigation_for(staff_user) if item.section.label == "Health") == "/healthz"
    finally:
        unregister_section("healthz")
    assert "Health" not in [item.section.label for item in navigation_for(staff_user)]
