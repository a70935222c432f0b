"""Side by side: a real nginx (Debian's, as production runs it) serving a file, and the hub's download app serving
the same file through a signed link, get the same requests; conditionals and ranges must get the same answers.

Compared: status, Content-Type, Content-Length, Content-Range, ETag, Last-Modified, Accept-Ranges, and the body
with the multipart boundary normalised (both boundaries are 20 digits, so the lengths agree too). The body of a
412 or 416 is each server's own error text (nginx's is an HTML page), so for those only the headers that say
something about the file are compared.

nginx runs with ``if_modified_since before`` (RFC 9110 §13.1.3: not modified when the file is not newer than
the date; nginx's default answers 304 for the exact date only), which is how the hub reads If-Modified-Since.
Under X-Accel-Redirect the hub answers conditional requests itself before nginx sees them, so production agrees
whatever nginx's setting. Skips without nginx; fails when CI is set.
"""

from __future__ import annotations

import http.client
from datetime import UTC, datetime, timedelta

import pytest

from downloads.asgi import DownloadApp, config_from_settings
from tests.downloads.conftest import fetch, link_path
from tests.downloads.nginx_support import REQUESTS, SERVED_NAME, comparable, request_id

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hub(served_dir, downloads_root, settings, customer):
    from downloads.services import link_create

    settings.DOWNLOADS_ROOT = served_dir
    link = link_create(customer=customer, path=SERVED_NAME, expires_at=datetime.now(UTC) + timedelta(days=1))
    app = DownloadApp(config_from_settings(), submit=lambda attempt: None)
    return app, link_path(link)


def _nginx_answer(port: int, method: str, headers: dict) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, "/" + SERVED_NAME, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, body
    finally:
        connection.close()


@pytest.mark.parametrize(("method", "headers"), REQUESTS, ids=[request_id(*row) for row in REQUESTS])
def test_the_hub_answers_as_nginx_does(nginx, hub, method, headers):
    app, path = hub
    expected = comparable(*_nginx_answer(nginx, method, headers))
    answer = fetch(app, path, method=method, headers=list(headers.items()))
    assert comparable(answer.status, answer.headers, answer.body) == expected


def test_the_table_covers_what_the_issue_asks(nginx):
    statuses = {_nginx_answer(nginx, method, headers)[0] for method, headers in REQUESTS}
    assert len(REQUESTS) >= 20
    assert statuses == {200, 206, 304, 412, 416}
