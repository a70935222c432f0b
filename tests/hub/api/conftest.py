from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The token endpoint still checks real passwords; only the cost of hashing them drops.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def household_user(db) -> User:
    user = User.objects.create_user(
        "alice", email="alice@example.test", password="correct horse battery", first_name="Alice", last_name="Liddell"
    )
    user.groups.add(Group.objects.get(name="household"))
    return user


@pytest.fixture
def staff_user(db) -> User:
    user = User.objects.create_user("bob", email="bob@example.test", password="correct horse battery", is_staff=True)
    user.groups.add(Group.objects.get(name="staff"))
    return user


@pytest.fixture
def oauth_application(db) -> Application:
    return Application.objects.create(
        name="script",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_DEVICE_CODE,
    )


@pytest.fixture
def bearer(oauth_application):
    """``bearer(user, "events:read", expires_in=...)`` → headers for the test client carrying a fresh token."""
    counter = iter(range(1_000_000))

    def make(user: User, scope: str, *, expires_in: timedelta = timedelta(hours=1)) -> dict[str, str]:
        raw = f"test-token-{next(counter)}-{user.pk}"
        token = AccessToken(user=user, application=oauth_application, scope=scope, expires=timezone.now() + expires_in)
        set_token_value(token, raw)  # hashed at rest, as the token endpoint stores it
        token.save()
        return {"Authorization": f"Bearer {raw}"}

    return make
