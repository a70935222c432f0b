"""The password of the users the shared fixtures (tests/conftest.py) create."""

USER_PASSWORD = "correct horse battery"
