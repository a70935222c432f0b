"""HTTP ``Range: bytes=…`` for one file (RFC 9110 §14): pure, no Django.

Several ranges that overlap or touch are merged into one; several that stay apart are ignored (the whole file
is sent, which the RFC allows), so a hostile header cannot make the hub send a byte twice or build a huge
multipart answer.
"""

from __future__ import annotations

import re

UNSATISFIABLE = "unsatisfiable"
MAX_HEADER_LENGTH = 1000
MAX_SPECS = 50
_SPEC_RE = re.compile(r"(\d*)-(\d*)")
_TOO_BIG = 10**19  # numbers past this are "beyond any file" without turning a huge digit string into an int


def _number(digits: str) -> int:
    return _TOO_BIG if len(digits) > 19 else int(digits)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(first, last)`` inclusive, :data:`UNSATISFIABLE` (answer 416), or ``None`` (ignore it, send it all)."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        return None
    unit, sep, specs_text = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in specs_text.split(",")]
    if not specs or len(specs) > MAX_SPECS:
        return None
    wanted: list[tuple[int, int]] = []
    for spec in specs:
        match = _SPEC_RE.fullmatch(spec)
        if not match or (not match[1] and not match[2]):
            return None
        if match[1]:
            first = _number(match[1])
            last = _number(match[2]) if match[2] else _TOO_BIG
            if last < first:
                return None
            if first < size:
                wanted.append((first, min(last, size - 1)))
        else:
            suffix = _number(match[2])
            if suffix > 0 and size > 0:
                wanted.append((max(0, size - suffix), size - 1))
    if not wanted:
        return UNSATISFIABLE
    wanted.sort()
    merged = [wanted[0]]
    for first, last in wanted[1:]:
        if first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged[0] if len(merged) == 1 else None
