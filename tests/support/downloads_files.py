"""The files a downloads root holds in tests: a small text, a 1 MiB binary, a non-ASCII name, an empty file, and
two symbolic links that lead outside the root (which the download path must refuse)."""

from __future__ import annotations

import os
from pathlib import Path


def downloads_tree(tmp_path: Path) -> Path:
    root = tmp_path / "downloads"
    (root / "dir1").mkdir(parents=True)
    (root / "dir1" / "example1.txt").write_text("hello\n")
    (root / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB, streamed in chunks
    (root / "Größe naïve.pdf").write_bytes(b"%PDF-1.4 tiny")
    (root / "empty.txt").write_bytes(b"")
    (tmp_path / "secret.txt").write_text("outside the root\n")
    os.symlink(tmp_path / "secret.txt", root / "escape.txt")
    os.symlink(tmp_path, root / "escape_dir")
    return root
