"""Uploading a file into the downloads root from the link's add form: streamed into the root, size-limited, names
checked, never replacing a file unless asked, nothing left behind when anything goes wrong."""

from __future__ import annotations

import errno
import html
import io
import os
import re
import runpy
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from downloads import uploads
from downloads.models import DownloadLink
from downloads.services import customer_create

pytestmark = pytest.mark.django_db

ADD = "/admin/downloads/downloadlink/add/"
PROJECT_DIR = Path(__file__).resolve().parents[2]
SETTINGS_FILE = PROJECT_DIR / "hub" / "settings.py"


def text_of(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def everything_in(root: Path) -> set[str]:
    """Every entry under ``root``, hidden ones included (a leftover temporary file would show here)."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.fixture
def acme(db):
    return customer_create(slug="acme", name="ACME Corp")


def post_upload(client, acme, content: bytes, file_name: str = "manual.pdf", **fields):
    data = {
        "customer": acme.pk,
        "path": "",
        "expires_at_0": "2099-01-01",
        "expires_at_1": "10:00:00",
        "upload": SimpleUploadedFile(file_name, content, content_type="application/pdf"),
        **fields,
    }
    return client.post(ADD, data)


def form_errors(response) -> dict:
    return {name: list(errors) for name, errors in response.context["adminform"].form.errors.items()}


def test_the_add_form_takes_an_upload_and_makes_the_link_to_it(admin_client, downloads_root, acme):
    before = everything_in(downloads_root)
    form = admin_client.get(ADD).content.decode()
    assert 'enctype="multipart/form-data"' in form
    assert 'type="file" name="upload"' in form
    response = post_upload(admin_client, acme, b"%PDF-1.7 the manual", max_downloads="2")
    link = DownloadLink.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/downloads/downloadlink/{link.pk}/change/"
    assert (link.path, link.max_downloads) == ("manual.pdf", 2)
    assert (downloads_root / "manual.pdf").read_bytes() == b"%PDF-1.7 the manual"
    assert everything_in(downloads_root) == before | {"manual.pdf"}  # and no temporary file left
    assert oct((downloads_root / "manual.pdf").stat().st_mode & 0o777) == oct(0o644)  # nginx may read it
    page = admin_client.get(response["Location"])
    assert "Uploaded manual.pdf into the downloads root." in text_of(page)
    # The next link's chooser offers it.
    assert "manual.pdf" in [
        value for value, _ in admin_client.get(ADD).context["adminform"].form.fields["path"].choices
    ]


def test_the_upload_can_be_given_another_name(admin_client, downloads_root, acme):
    post_upload(admin_client, acme, b"v2", file_name="manual.pdf", upload_name="Manual v2 (größer).pdf")
    assert DownloadLink.objects.get().path == "Manual v2 (größer).pdf"
    assert (downloads_root / "Manual v2 (größer).pdf").read_bytes() == b"v2"


@pytest.mark.parametrize(
    "name",
    ["dir1/evil.txt", "../evil.txt", "evil..txt", "..", "back\\slash.txt", "tab\there.txt", "line\nbreak.txt",
     "bell\x07.txt", "rtl\u202eexe.txt", ".hidden", "x" * 300],
    ids=["slash", "dotdot-slash", "dotdot", "parent", "backslash", "tab", "newline", "bell", "bidi", "hidden",
         "too-long"],
)  # fmt: skip
def test_a_bad_name_is_refused_and_nothing_is_stored(admin_client, downloads_root, acme, name):
    before = everything_in(downloads_root)
    response = post_upload(admin_client, acme, b"data", upload_name=name)
    assert response.status_code == 200
    assert "upload_name" in form_errors(response)
    assert DownloadLink.objects.count() == 0
    assert everything_in(downloads_root) == before


def test_a_nul_in_the_name_is_refused(admin_client, downloads_root, acme):
    before = everything_in(downloads_root)
    response = post_upload(admin_client, acme, b"data", upload_name="nul\x00.txt")
    assert "upload_name" in form_errors(response)
    assert uploads.name_problem("nul\x00.txt") == "a name cannot contain a NUL character"
    assert everything_in(downloads_root) == before


def test_an_existing_name_is_kept_unless_replacing_is_confirmed(admin_client, downloads_root, acme):
    before = everything_in(downloads_root)
    response = post_upload(admin_client, acme, b"new text\n", file_name="example1.txt", upload_name="empty.txt")
    errors = form_errors(response)
    assert "A file named 'empty.txt' is already in the downloads root" in errors["upload_replace"][0]
    assert (downloads_root / "empty.txt").read_bytes() == b""
    assert everything_in(downloads_root) == before
    assert DownloadLink.objects.count() == 0

    replaced = post_upload(admin_client, acme, b"new text\n", upload_name="empty.txt", upload_replace="on")
    assert replaced.status_code == 302
    assert (downloads_root / "empty.txt").read_bytes() == b"new text\n"
    assert everything_in(downloads_root) == before
    assert DownloadLink.objects.get().path == "empty.txt"


def test_a_folder_of_that_name_is_never_replaced(admin_client, downloads_root, acme):
    before = everything_in(downloads_root)
    response = post_upload(admin_client, acme, b"data", upload_name="dir1", upload_replace="on")
    assert form_errors(response)["upload_name"] == [
        "'dir1' is a folder in the downloads root: give the upload another name."
    ]
    assert everything_in(downloads_root) == before


def test_a_file_appearing_under_the_name_before_the_move_is_not_replaced(
    admin_client, downloads_root, acme, monkeypatch
):
    real_store = uploads.store

    def someone_else_first(uploaded, name, *, replace):
        (downloads_root / name).write_bytes(b"theirs")
        return real_store(uploaded, name, replace=replace)

    monkeypatch.setattr(uploads, "store", someone_else_first)
    response = post_upload(admin_client, acme, b"mine", file_name="race.bin")
    assert response.status_code == 302  # back to the form, with the message
    assert "appeared in the downloads root meanwhile: nothing was replaced" in text_of(admin_client.get(ADD))
    assert (downloads_root / "race.bin").read_bytes() == b"theirs"
    assert not [name for name in everything_in(downloads_root) if name.startswith(uploads.TEMP_PREFIX)]
    assert DownloadLink.objects.count() == 0


def test_a_file_over_the_limit_is_refused_with_the_limit_named(admin_client, downloads_root, acme, settings):
    settings.DOWNLOADS_UPLOAD_MAX = 300_000  # bigger than one chunk, so it is refused while streaming
    before = everything_in(downloads_root)
    response = post_upload(admin_client, acme, b"x" * 300_001, file_name="huge.iso")
    message = form_errors(response)["upload"][0]
    assert message.startswith("huge.iso is larger than the upload limit of 300,000 bytes")
    assert "DOWNLOADS_UPLOAD_MAX" in message
    assert everything_in(downloads_root) == before
    assert DownloadLink.objects.count() == 0
    # The rest of the form was still read: the admin does not retype it.
    assert response.context["adminform"].form["customer"].value() == str(acme.pk)

    exactly = post_upload(admin_client, acme, b"x" * 300_000, file_name="huge.iso")
    assert exactly.status_code == 302
    assert (downloads_root / "huge.iso").stat().st_size == 300_000


def test_a_disk_that_fills_up_mid_upload_leaves_nothing_and_says_so(admin_client, downloads_root, acme, monkeypatch):
    written = []
    real_write = uploads._write_chunk

    def write_until_full(file, data):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data))
        real_write(file, data)

    monkeypatch.setattr(uploads, "_write_chunk", write_until_full)
    before = everything_in(downloads_root)
    response = post_upload(admin_client, acme, os.urandom(3 * uploads.DownloadsRootUploadHandler.chunk_size))
    message = form_errors(response)["upload"][0]
    assert message.startswith("The disk holding the downloads root is full: manual.pdf could not be stored after")
    assert "nothing was kept" in message
    assert written, "the first chunk was written before the disk filled up"
    assert everything_in(downloads_root) == before
    assert DownloadLink.objects.count() == 0


def test_the_downloads_root_is_created_by_an_upload_when_missing(
    admin_client, tmp_path, downloads_root, acme, settings
):
    settings.DOWNLOADS_ROOT = tmp_path / "fresh" / "root"
    response = post_upload(admin_client, acme, b"first file", file_name="first.txt")
    assert response.status_code == 302
    assert (tmp_path / "fresh" / "root" / "first.txt").read_bytes() == b"first file"


def test_the_downloads_root_is_created_after_migrate_and_a_failure_is_only_logged(tmp_path, settings, caplog):
    settings.DOWNLOADS_ROOT = tmp_path / "var" / "downloads"
    uploads.root_after_migrate(sender=None)
    assert (tmp_path / "var" / "downloads").is_dir()
    (tmp_path / "a-file").write_text("")
    settings.DOWNLOADS_ROOT = tmp_path / "a-file" / "downloads"
    assert uploads.root_ensure_or_warn() is None
    assert "could not create the downloads root DOWNLOADS_ROOT=" in caplog.text


def test_only_staff_who_may_add_links_can_write_into_the_root(client, downloads_root, acme):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_downloadlink"))
    client.force_login(viewer)
    before = everything_in(downloads_root)
    assert post_upload(client, acme, b"sneaky", file_name="sneaky.txt").status_code == 403
    client.logout()
    assert post_upload(client, acme, b"sneaky", file_name="sneaky.txt").status_code == 302  # to the login page
    assert everything_in(downloads_root) == before


def test_the_upload_needs_the_csrf_token(downloads_root, acme):
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", password="x"))
    before = everything_in(downloads_root)
    assert post_upload(client, acme, b"data", file_name="csrf.txt").status_code == 403
    assert everything_in(downloads_root) == before


def test_choosing_a_file_and_uploading_one_at_once_is_refused(admin_client, downloads_root, acme):
    response = post_upload(admin_client, acme, b"data", path="big.bin")
    assert form_errors(response)["path"] == ["Choose a file or upload one, not both."]
    response = admin_client.post(
        ADD, {"customer": acme.pk, "path": "", "expires_at_0": "2099-01-01", "expires_at_1": "10:00:00"}
    )
    assert form_errors(response)["path"] == ["Choose a file, or upload one."]


def nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def admin_body_limit(conf: str) -> str:
    """The client_max_body_size nginx applies to /admin/ on the hub's HTTPS server: the admin's own location's,
    else that server's, else the http block's (nginx's inheritance)."""
    server = conf.split("listen 443 ssl", 1)[1].split("\n    server {", 1)[0]
    admin = re.search(r"location (?:\^~ )?/admin/ \{(.*?)\n        \}", server, re.DOTALL)
    server_itself = re.sub(r"location [^{]*\{.*?\n        \}", "", server, flags=re.DOTALL)
    http_itself = conf.split("server {", 1)[0]
    for scope in ([admin.group(1)] if admin else []) + [server_itself, http_itself]:
        found = re.findall(r"^\s*client_max_body_size\s+(\S+);", scope, re.MULTILINE)
        if found:
            return found[-1]
    return "1m"  # nginx's default


def test_nginx_admits_admin_uploads_exactly_as_large_as_the_hub_does(monkeypatch, tmp_path):
    for name in ("DOWNLOADS_UPLOAD_MAX", "HUB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_VAR_DIR", str(tmp_path))
    default = runpy.run_path(str(SETTINGS_FILE), run_name="hub_settings_under_test")["DOWNLOADS_UPLOAD_MAX"]
    limit = admin_body_limit((PROJECT_DIR / "deploy" / "nginx.conf").read_text())
    assert (default, limit) == (1024**3, "1024m")
    assert nginx_size(limit) == default


class _FullDisk:
    """Django's spooled request body on a disk that fills up after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, *args, **kwargs):
        room = self.room

        class File(io.BytesIO):
            def write(self, data):
                if self.tell() + len(data) > room:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return super().write(data)

        return File()


async def test_a_disk_filling_up_while_django_reads_the_body_is_a_507_saying_so(monkeypatch, downloads_root):
    from hub.asgi import BodySpaceGuard, django_asgi_app

    monkeypatch.setattr("django.core.handlers.asgi.tempfile.SpooledTemporaryFile", _FullDisk(room=100_000))
    chunks = [b"x" * 65536] * 4
    sent = []

    async def receive():
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ADD,
        "raw_path": ADD.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost"), (b"content-type", b"multipart/form-data; boundary=x")],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }
    before = everything_in(downloads_root)
    await BodySpaceGuard(django_asgi_app)(scope, receive, send)
    assert sent[0]["status"] == 507
    assert sent[1]["body"].startswith(b"The server's disk is full: the request (an upload?) could not be received")
    assert everything_in(downloads_root) == before
