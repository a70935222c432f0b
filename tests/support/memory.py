"""Measuring what a test costs in memory: the process's peak resident set while a block runs."""

from __future__ import annotations

import re

MB = 1024 * 1024


class PeakRss:
    """The process's resident memory: its peak (VmHWM, reset on entry) above what it was on entry (Linux)."""

    @staticmethod
    def _status_kb(field: str) -> int:
        with open("/proc/self/status") as status:
            return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))

    def __enter__(self) -> PeakRss:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # resets VmHWM to the current RSS
        self.start = self._status_kb("VmRSS") * 1024
        return self

    def __exit__(self, *exc_info) -> None:
        self.growth = self._status_kb("VmHWM") * 1024 - self.start

    def assert_within(self, bound: int) -> None:
        assert self.growth < bound, f"peak RSS grew by {self.growth / MB:.1f} MB, more than {bound / MB:.0f} MB"
        print(f"peak RSS growth {self.growth / MB:.1f} MB (bound {bound / MB:.0f} MB)")
