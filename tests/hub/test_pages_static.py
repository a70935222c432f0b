"""Front-end assets ship with the hub and the hub serves them itself: no CDN, no separate web server needed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import override_settings

from hub.asgi import build_application
from tests.support.html import assets_of

PASSWORD = "plum-orchard-velvet-42"


async def asgi_get(app, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET through the ASGI application, as uvicorn would call it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = []
    never = asyncio.Event()

    async def receive():
        if messages:
            return messages.pop(0)
        # The client stays connected: Django abandons a response once it hears http.disconnect.
        await never.wait()

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], {name.lower(): value for name, value in start["headers"]}, body


# whitenoise 6 hands Django a synchronous file iterator, which Django buffers under ASGI and warns about;
# harmless for these small files (production's nginx serves static files itself).
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/static/vendor/bootstrap/css/bootstrap.min.css", b"text/css", b"Bootstrap  v5.3.9"),
        ("/static/vendor/bootstrap/js/bootstrap.bundle.min.js", b"text/javascript", b"Bootstrap v5.3.9"),
    ],
)
async def test_bootstrap_is_served_by_the_hubs_own_asgi_application(path, content_type, marker):
    status, headers, body = await asgi_get(build_application(run_embedded=False), path)
    assert status == 200
    assert headers[b"content-type"].startswith(content_type)
    assert marker in body[:200]


async def test_a_missing_static_file_is_a_404_not_a_page():
    status, _headers, _body = await asgi_get(build_application(run_embedded=False), "/static/vendor/nothing.css")
    assert status == 404


def test_the_embedded_default_serves_static_files_straight_from_the_source_folders():
    # No collectstatic step on a fresh machine: whitenoise finds files where the finders do.
    assert settings.WHITENOISE_USE_FINDERS is True
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE


def test_the_vendored_files_carry_their_licence_and_a_note_of_their_version():
    readme = finders.find("vendor/README.md")
    assert readme
    with open(readme) as notes:
        assert "| `bootstrap/` |" in notes.read()
    assert finders.find("vendor/bootstrap/LICENSE")


@pytest.fixture
def staff_client(client_as, staff_user):
    return client_as(staff_user)


PAGES_SIGNED_IN = [
    "/",
    "/devices/",
    "/live/",
    "/downloads/",
    "/events/",
    "/password/",
    "/password/done/",
    "/account/apps/",
]


def assert_assets_are_the_hubs_own(html: str) -> None:
    assets = assets_of(html)
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in assets
    assert "/static/vendor/bootstrap/js/bootstrap.bundle.min.js" in assets
    for asset in assets:
        assert asset.startswith(settings.STATIC_URL), asset
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), f"{asset} does not exist"


@pytest.mark.django_db
def test_the_login_page_loads_only_the_hubs_own_assets(client):
    assert_assets_are_the_hubs_own(client.get("/login/").content.decode())


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES_SIGNED_IN)
def test_every_page_loads_only_the_hubs_own_assets(staff_client, path):
    response = staff_client.get(path)
    assert response.status_code == 200
    assert_assets_are_the_hubs_own(response.content.decode())


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_error_pages_load_only_the_hubs_own_assets(client):
    household = User.objects.create_user("frank", password=PASSWORD)
    client.force_login(household)
    forbidden = client.get("/events/")
    assert forbidden.status_code == 403
    assert_assets_are_the_hubs_own(forbidden.content.decode())
    missing = client.get("/nowhere/")
    assert missing.status_code == 404
    assert_assets_are_the_hubs_own(missing.content.decode())


# <script src=…> or <link href=…> pointing at another host, with or without a scheme (//cdn.example/…).
REMOTE_ASSET_IN_HTML = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
REMOTE_IMPORT_IN_CSS = re.compile(r"""(@import\s+(url\()?\s*['"]?\s*(https?:)?//|url\(\s*['"]?\s*(https?:)?//)""", re.I)


def project_asset_files(folder_name: str, suffixes: tuple[str, ...]):
    """Files under each ``templates``/``static`` folder of the project itself (not site-packages)."""
    root = Path(settings.BASE_DIR).resolve()
    folders = {root / folder_name}
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.is_relative_to(root) and not path.is_relative_to(root / ".venv"):
            folders.add(path / folder_name)
    for folder in sorted(folders):
        for file in sorted(folder.rglob("*")):
            if file.suffix in suffixes:
                yield file


def test_no_template_of_the_project_loads_a_script_or_stylesheet_from_another_host():
    templates = list(project_asset_files("templates", (".html",)))
    assert any(template.name == "base.html" for template in templates)
    offenders = [str(template) for template in templates if REMOTE_ASSET_IN_HTML.search(template.read_text())]
    assert offenders == []


def test_no_stylesheet_of_the_project_imports_from_another_host():
    sheets = list(project_asset_files("static", (".css",)))
    assert any(sheet.name == "bootstrap.min.css" for sheet in sheets)
    assert [str(sheet) for sheet in sheets if REMOTE_IMPORT_IN_CSS.search(sheet.read_text())] == []


def test_the_remote_asset_patterns_catch_what_they_are_for():
    # The scans above are only as good as these patterns.
    assert REMOTE_ASSET_IN_HTML.search('<script src="https://cdn.jsdelivr.net/npm/bootstrap.js"></script>')
    assert REMOTE_ASSET_IN_HTML.search("<link rel=stylesheet href='//fonts.googleapis.com/css'>")
    assert not REMOTE_ASSET_IN_HTML.search('<link rel="stylesheet" href="{% static \'x.css\' %}">')
    assert not REMOTE_ASSET_IN_HTML.search('<a href="https://getbootstrap.com/">Bootstrap</a>')
    assert REMOTE_IMPORT_IN_CSS.search("@import url(https://fonts.googleapis.com/css?family=Source+Sans+Pro);")
    assert not REMOTE_IMPORT_IN_CSS.search(
        "background: url(\"data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'>\")"
    )
