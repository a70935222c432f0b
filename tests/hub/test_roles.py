"""One rule of who is staff, for the pages and the API alike."""

import pytest
from django.contrib.auth.models import Group, User

from hub.roles import user_is_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def group_staff_member():
    user = User.objects.create_user("carol", password="unused-password-123")
    user.groups.add(Group.objects.get(name="staff"))
    return user


def test_the_staff_flag_or_the_staff_group_makes_staff_and_household_does_not(group_staff_member):
    flagged = User.objects.create_user("dave", is_staff=True)
    household = User.objects.create_user("erin")
    household.groups.add(Group.objects.get(name="household"))
    assert user_is_staff(group_staff_member)
    assert user_is_staff(flagged)
    assert not user_is_staff(household)


def test_an_inactive_staff_member_is_not_staff(group_staff_member):
    group_staff_member.is_active = False
    assert not user_is_staff(group_staff_member)


def test_a_staff_group_member_sees_the_events_page_and_may_use_the_events_api(client, group_staff_member):
    client.force_login(group_staff_member)
    assert client.get("/events/").status_code == 200
    assert client.get("/v1/events").status_code == 200


def test_a_household_member_gets_neither(client):
    user = User.objects.create_user("frank")
    user.groups.add(Group.objects.get(name="household"))
    client.force_login(user)
    assert client.get("/events/").status_code == 403
    assert client.get("/v1/events").status_code == 403
