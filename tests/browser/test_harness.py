"""The harness itself: a failing browser test leaves a screenshot, and a page may not reach beyond 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.mark.slow
def test_failures_leave_screenshots_and_outside_requests_are_refused(chromium, tmp_path):
    artifacts = tmp_path / "artifacts"
    environment = {
        **os.environ,
        # Its own run-time folder: a child sharing ours would recreate (delete) our test database file.
        "HUB_VAR_DIR": str(tmp_path / "var"),
        "HUB_TEST_ARTIFACTS": str(artifacts),
    }
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "meta" / "failing_on_purpose.py"),
            "-o",
            "python_files=failing_on_purpose.py",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = child.stdout + child.stderr
    assert child.returncode == 1, output
    assert "1 failed" in output, output
    assert "1 error" in output, output
    assert "a page tried to reach beyond the test server: ['http://203.0.113.9/pixel.png']" in output
    (screenshot,) = artifacts.glob("failing_on_purpose-test_a_failing_browser_test_leaves_a_screenshot-*.png")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 1000
