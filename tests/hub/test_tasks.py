from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from hub.tasks import clear_expired_tokens

pytestmark = pytest.mark.django_db


def test_expired_oauth_tokens_are_cleared_hourly_and_live_ones_stay():
    user = User.objects.create_user("scripter")
    application = Application.objects.create(
        name="thermostat script",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_DEVICE_CODE,
        user=user,
    )
    now = timezone.now()
    for token, expires in (("old", now - timedelta(hours=1)), ("live", now + timedelta(hours=1))):
        AccessToken.objects.create(user=user, application=application, token=token, expires=expires, scope="read")

    clear_expired_tokens.delay()
    assert list(AccessToken.objects.values_list("expires", flat=True)) == [now + timedelta(hours=1)]
    clear_expired_tokens.delay()  # idempotent
    assert AccessToken.objects.count() == 1
    assert settings.CELERY_BEAT_SCHEDULE["hub.clear_expired_tokens"]["task"] == clear_expired_tokens.name
