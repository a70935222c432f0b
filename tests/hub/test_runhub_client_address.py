"""`manage.py runhub` faces its clients directly, so it believes no forwarded header, even from loopback.

Seen before: a script on the hub's own machine sent a new X-Forwarded-For with every wrong password and was
never locked out. The address django-axes counts must be the TCP peer's.
"""

from __future__ import annotations

import pytest

from tests.support.login_form import sign_in
from tests.support.runhub import embedded_environment, free_port, manage, running_hub

pytestmark = pytest.mark.slow

PASSWORD = "plum-orchard-velvet-42"


CREATE_BOB = (
    f"from django.contrib.auth import get_user_model as m; m().objects.create_user('bob', password={PASSWORD!r})"
)


def test_the_embedded_server_ignores_x_forwarded_for_from_a_loopback_client(tmp_path):
    port = free_port()
    # FORWARDED_ALLOW_IPS is uvicorn's own variable; even set, runhub must not believe the header.
    environ = embedded_environment(tmp_path, port=port, FORWARDED_ALLOW_IPS="127.0.0.1")
    manage(environ, "migrate", "--noinput", "-v", "0", check=True)
    manage(environ, "shell", "-c", CREATE_BOB, check=True)
    with running_hub(environ, port) as hub:

        def attempt(password: str, forwarded_for: str):
            headers = {"X-Forwarded-For": forwarded_for, "X-Real-IP": forwarded_for}
            return sign_in(hub.base, "bob", password, origin=hub.base, headers=headers)

        statuses = [attempt("wrong-password", f"198.51.100.{n}").status for n in range(1, 21)]
        assert statuses == [200] * 4 + [429] * 16, f"each invented address was counted apart: {statuses}"
        right = attempt(PASSWORD, "203.0.113.99")
        assert right.status == 429
        assert "sessionid" not in right.cookies
