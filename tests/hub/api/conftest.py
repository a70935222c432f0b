import base64

import pytest

from tests.support.downloads_files import downloads_tree


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The token endpoint still checks real passwords; only the cost of hashing them drops.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def downloads_root(tmp_path, settings):
    """A downloads root with files to link to (dir1/example1.txt…) and one signing key."""
    root = downloads_tree(tmp_path)
    settings.DOWNLOADS_ROOT = root
    settings.DOWNLOADS_KEYS = "k1:" + base64.b64encode(b"k" * 32).decode()
    return root
