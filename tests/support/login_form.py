"""Signing in through the hub's own login form over real HTTP(S), as a script outside the test process would.

Used by the tests that check whose address django-axes counts failures against (behind nginx, and the
embedded server facing a client directly).
"""

from __future__ import annotations

import http.client
import re
import ssl
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie


@dataclass
class Answer:
    status: int
    cookies: dict[str, str]
    body: str


def _request(base: str, method: str, path: str, *, headers: dict, body: bytes | None, cafile: str | None):
    parts = urllib.parse.urlsplit(base)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=cafile)
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        values = {name: morsel.value for name, morsel in cookies.items()}
        return Answer(response.status, values, response.read().decode())
    finally:
        connection.close()


def sign_in(
    base: str,
    username: str,
    password: str,
    *,
    origin: str,
    headers: dict | None = None,
    cafile: str | None = None,
) -> Answer:
    """GET /login/ for its CSRF token, then POST the form; ``headers`` go with both requests.

    A successful sign-in answers 302 and sets the session cookie; a wrong password 200 (the form again);
    an account locked by django-axes 429.
    """
    extra = dict(headers or {})
    form = _request(base, "GET", "/login/", headers=extra, body=None, cafile=cafile)
    assert form.status == 200, f"the login page answered {form.status}"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.body).group(1)
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username, "password": password})
    return _request(
        base,
        "POST",
        "/login/",
        headers={
            **extra,
            "Cookie": "; ".join(f"{name}={value}" for name, value in form.cookies.items()),
            "Origin": origin,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=body.encode(),
        cafile=cafile,
    )
