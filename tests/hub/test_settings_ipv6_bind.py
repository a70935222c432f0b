"""An IPv6 ``HUB_BIND`` gives a usable default ``HUB_PUBLIC_URL``: the address in brackets, as URLs write it.

Found by running ``HUB_BIND=[::1]:18444 manage.py runhub``: it printed "The hub is at http://::1:18444/", and the
device flow's verification links and the WebSocket origin check were built from that broken URL.
"""

from __future__ import annotations

import runpy

import pytest
from django.http.request import split_domain_port, validate_host

from messaging.auth import origin_allowed
from tests.hub.test_settings import SETTINGS_FILE, names_read_by_settings


def settings_under(monkeypatch, tmp_path, **environ: str) -> dict:
    for name in names_read_by_settings():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path / "var"))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE), run_name="hub_settings_under_test")


@pytest.mark.parametrize(
    ("bind", "public_url"),
    [
        ("[::1]:18444", "http://[::1]:18444"),
        ("[fd00::2]:8000", "http://[fd00::2]:8000"),
        ("[::]:8000", "http://127.0.0.1:8000"),  # every interface: the URL this machine itself answers on
        ("0.0.0.0:8000", "http://127.0.0.1:8000"),
        ("192.0.2.2:8000", "http://192.0.2.2:8000"),
        ("localhost:8000", "http://localhost:8000"),
    ],
)
def test_the_default_public_url_brackets_an_ipv6_bind_address(monkeypatch, tmp_path, bind, public_url):
    settings = settings_under(monkeypatch, tmp_path, HUB_BIND=bind)
    assert settings["HUB_PUBLIC_URL"] == public_url
    # The browser on that address is one of the hub's own origins, and its Host header is allowed (Django reads
    # an IPv6 Host as "[address]": without the brackets in ALLOWED_HOSTS every page was a 400).
    assert origin_allowed(
        public_url, host=None, secure=False, public_url=settings["HUB_PUBLIC_URL"], trusted_origins=(), allowed_hosts=()
    )
    domain, _port = split_domain_port(public_url.removeprefix("http://"))
    assert validate_host(domain, settings["ALLOWED_HOSTS"])
