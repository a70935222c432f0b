"""Files uploaded from the admin into the downloads root (DOWNLOADS_ROOT).

An upload is written by Django's upload machinery, chunk by chunk, into a hidden temporary file inside the root
(so on the root's own filesystem, where it will stay), counted against DOWNLOADS_UPLOAD_MAX as it is parsed, and
only moved to its name once the whole form is valid: a hard link for a new
name (atomic, and it fails rather than replace a file that appeared meanwhile), ``os.replace`` when the admin
confirmed replacing an existing file. Anything that goes wrong (too big, the disk fills up, a bad form) leaves no
file behind: the temporary file is removed at the end of the request whatever happened.

Under ASGI, Django first reads the whole request body into a spooled temporary file of the system's temp folder
(``django.core.handlers.asgi.ASGIHandler.read_body``) before any view or handler runs: that folder needs room for
the largest upload too (docs/downloads.md says so).

Hidden names (starting with ``.``) are never offered for links (``downloads.selectors.downloads_root_files``),
so a temporary file is never seen half-written.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import unicodedata
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".upload-"
#: A file name's limit on Linux filesystems, in bytes.
MAX_NAME_BYTES = 255
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class UploadError(ValueError):
    """An upload that cannot be stored as asked; the message says why, in words for the admin."""


def root_ensure() -> Path:
    """Create the downloads root (and its parents) if it does not exist; return it. Raises OSError."""
    root = Path(settings.DOWNLOADS_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    return root


def root_ensure_or_warn() -> Path | None:
    """:func:`root_ensure` at start-up: a root that cannot be created is logged, never a failed start (downloads
    then answer 404 and the admin says where the files are expected)."""
    try:
        return root_ensure()
    except OSError as exc:
        logger.warning(
            "downloads: could not create the downloads root DOWNLOADS_ROOT=%s: %s", settings.DOWNLOADS_ROOT, exc
        )
        return None


def root_after_migrate(sender, **kwargs) -> None:
    """post_migrate: create the downloads root (``manage.py migrate`` runs before the hub serves)."""
    root_ensure_or_warn()


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file's name in the downloads root, or None.

    Only plain names in the root itself: no folder part, nothing a shell or a URL would read differently.
    """
    if not name:
        return "the name is empty"
    if "/" in name or "\\" in name:
        return "a name cannot contain / or \\ (files go straight into the downloads root)"
    if ".." in name:
        return "a name cannot contain '..'"
    if "\x00" in name:
        return "a name cannot contain a NUL character"
    if any(unicodedata.category(character) in {"Cc", "Cf", "Zl", "Zp"} for character in name):
        return "a name cannot contain control characters (tabs, line breaks, invisible formatting)"
    if name != name.strip():
        return "a name cannot start or end with a space"
    if name.startswith("."):
        return "a name cannot start with '.' (hidden files are never offered for links)"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"the name is longer than {MAX_NAME_BYTES} bytes"
    return None


def exists_in_root(name: str) -> bool:
    return os.path.lexists(Path(settings.DOWNLOADS_ROOT) / name)


def is_folder_in_root(name: str) -> bool:
    """A real folder (not a symlink to one) of that name: it can never be replaced by a file."""
    path = Path(settings.DOWNLOADS_ROOT) / name
    return path.is_dir() and not path.is_symlink()


class RootUploadedFile(UploadedFile):
    """An upload being received into a hidden temporary file in the downloads root."""

    def __init__(self, name: str, content_type: str, charset, content_type_extra, *, root: Path) -> None:
        file = tempfile.NamedTemporaryFile(prefix=TEMP_PREFIX, dir=root)  # noqa: SIM115 (closed by the handler)
        super().__init__(file, name, content_type, 0, charset, content_type_extra)

    def temporary_file_path(self) -> str:
        return self.file.name

    def close(self) -> None:
        # Moved into place (os.replace) before the temporary file's own clean-up: nothing left to remove.
        with contextlib.suppress(FileNotFoundError):
            self.file.close()


def _write_chunk(file, data: bytes) -> None:
    # One place every byte goes through: the disk-full test makes it fail the way a full disk does.
    file.write(data)


class DownloadsRootUploadHandler(FileUploadHandler):
    """Django upload handler writing an admin's upload into the downloads root, counted against the limit.

    A file over DOWNLOADS_UPLOAD_MAX, or one the disk cannot hold, is dropped on the spot (its temporary file
    removed, the rest of its bytes read and discarded) and :attr:`problem` says why; the form shows it. Only
    used for staff who may add links (``accept=False`` drops every file: nobody else writes into the root).
    """

    chunk_size = 256 * 1024

    def __init__(self, request=None, *, accept: bool = True) -> None:
        super().__init__(request)
        self.accept = accept
        self.problem: str | None = None
        self.received: list[RootUploadedFile] = []
        # No ``file`` attribute until one is received: Django's parser closes ``handler.file`` when it has one.

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        if not self.accept:
            raise SkipFile()
        limit = settings.DOWNLOADS_UPLOAD_MAX
        if content_length is not None and content_length > limit:
            self._refuse(too_big(file_name, limit))
        try:
            root = root_ensure()
            self.file = RootUploadedFile(file_name, content_type, charset, content_type_extra, root=root)
        except OSError as exc:
            self._refuse(stored_nothing(file_name, exc))
        self.received.append(self.file)

    def receive_data_chunk(self, raw_data: bytes, start: int):
        limit = settings.DOWNLOADS_UPLOAD_MAX
        if start + len(raw_data) > limit:
            self._refuse(too_big(self.file_name, limit))
        try:
            _write_chunk(self.file, raw_data)
        except OSError as exc:
            self._refuse(stored_nothing(self.file_name, exc, written=start))
        return None

    def file_complete(self, file_size: int):
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as exc:
            self._refuse_completed(stored_nothing(self.file_name, exc, written=file_size))
            return None
        self.file.seek(0)
        self.file.size = file_size
        return self.file

    def _refuse(self, problem: str):
        self.problem = problem
        self.discard()
        raise SkipFile()

    def _refuse_completed(self, problem: str) -> None:
        self.problem = problem
        self.discard()

    def discard(self) -> None:
        """Remove every temporary file of this request that was not moved into place."""
        for received in self.received:
            received.close()  # NamedTemporaryFile unlinks its file on close
        self.received.clear()


def too_big(file_name: str, limit: int) -> str:
    return (
        f"{file_name} is larger than the upload limit of {limit:,} bytes ({limit / 2**30:.2f} GiB, "
        "DOWNLOADS_UPLOAD_MAX): nothing was stored. Copy larger files into the downloads root on the server."
    )


def stored_nothing(file_name: str, exc: OSError, *, written: int | None = None) -> str:
    if exc.errno in _DISK_FULL:
        where = f" after {written:,} bytes" if written else ""
        return (
            f"The disk holding the downloads root is full: {file_name} could not be stored{where}, and nothing "
            "was kept. Free some space (or remove old files) and upload it again."
        )
    return f"{file_name} could not be written into the downloads root ({exc.strerror or exc}): nothing was stored."


def store(uploaded: RootUploadedFile, name: str, *, replace: bool) -> Path:
    """Move a received upload to ``name`` in the downloads root, atomically; return its final path.

    Without ``replace`` an existing file of that name is never touched (:class:`UploadError`), also when it
    appeared after the form was checked.
    """
    problem = name_problem(name)
    if problem:
        raise UploadError(f"{name!r}: {problem}")
    root = Path(uploaded.temporary_file_path()).parent
    target = root / name
    temporary = uploaded.temporary_file_path()
    # mkstemp makes the file 0600; nginx, another user in production, must be able to read it.
    os.chmod(temporary, 0o644)
    if replace:
        try:
            os.replace(temporary, target)
        except OSError as exc:  # e.g. a folder of that name appeared meanwhile
            raise UploadError(
                f"{name!r} could not replace what is there ({exc.strerror or exc}): nothing was stored."
            ) from None
    else:
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise UploadError(
                f"A file named {name!r} appeared in the downloads root meanwhile: nothing was replaced. "
                "Upload again and tick 'Replace the existing file' if that is what you want."
            ) from None
        except OSError as exc:
            if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}:
                raise
            # A filesystem without hard links: a rename after the check (a file appearing in between is replaced).
            if os.path.lexists(target):
                raise UploadError(
                    f"A file named {name!r} exists in the downloads root: nothing was replaced."
                ) from None
            os.rename(temporary, target)
    uploaded.close()
    logger.info("downloads: stored upload %s (%s bytes, %s)", target, uploaded.size, "replaced" if replace else "new")
    return target
