import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The token endpoint still checks real passwords; only the cost of hashing them drops.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
