"""The address a download is audited under is the server's record of the peer, never a header the client wrote.

Behind nginx, uvicorn (trusting forwarded headers from nginx's address only) has already put the address
nginx saw into the ASGI scope; an X-Real-IP from anyone else proves nothing.
"""

from __future__ import annotations

import pytest

from downloads.models import DownloadEvent
from tests.downloads.conftest import fetch, link_path

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("embedded", [True, False], ids=["embedded", "production"])
def test_an_invented_x_real_ip_is_not_the_audited_address(make_app, make_link, audit_writer, embedded):
    app = make_app(EMBEDDED=embedded)
    response = fetch(app, link_path(make_link()), headers=[("X-Real-IP", "10.9.8.7")], client=("198.51.100.23", 4711))
    assert response.status == 200
    assert audit_writer.flush() == 1
    assert DownloadEvent.objects.get().ip == "198.51.100.23"
