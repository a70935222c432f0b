"""HTTP ``Range: bytes=…`` for one file (RFC 9110 §14) and ``multipart/byteranges`` (§14.6): pure, no Django.

Ranges that overlap or touch are merged into one and the parts are sent in file order, so a hostile header
cannot make the hub send a byte twice. A header with more than :data:`MAX_RANGES` ranges (or longer than
:data:`MAX_HEADER_LENGTH`) is ignored and the whole file sent, which the RFC allows: a multipart answer stays
at most 16 parts.
"""

from __future__ import annotations

import re

UNSATISFIABLE = "unsatisfiable"
MAX_HEADER_LENGTH = 1000
MAX_RANGES = 16
_SPEC_RE = re.compile(r"(\d*)-(\d*)")
_TOO_BIG = 10**19  # numbers past this are "beyond any file" without turning a huge digit string into an int


def _number(digits: str) -> int:
    return _TOO_BIG if len(digits) > 19 else int(digits)


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """The ``(first, last)`` ranges (inclusive, merged, in file order), :data:`UNSATISFIABLE` (answer 416), or
    ``None`` (ignore the header, send it all)."""
    wanted = _specs(header, size)
    return _merged(wanted) if isinstance(wanted, list) else wanted


def nginx_range_bytes(header: str | None, size: int) -> int | None:
    """How many of the file's bytes nginx's range filter sends for a ``header`` that :func:`parse_ranges` reads
    as ranges, or ``None`` when nginx sends the whole file instead.

    nginx merges nothing: it sends every range as asked, overlaps included, and sends the whole file when they
    add up to more than the file or when the header does not start with exactly ``bytes=`` (in any case). Under
    X-Accel-Redirect that, not what the hub would have sent, is what a capped download is handed.
    """
    if not header or header[:6].lower() != "bytes=":
        return None
    wanted = _specs(header, size)
    if not isinstance(wanted, list):
        return None
    total = sum(last - first + 1 for first, last in wanted)
    return total if total <= size else None


def _specs(header: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """The ranges as asked (clipped to the file, unmerged, in header order), UNSATISFIABLE or None."""
    if not header or len(header) > MAX_HEADER_LENGTH:
        return None
    unit, sep, specs_text = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in specs_text.split(",")]
    if not specs or len(specs) > MAX_RANGES:
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
    return wanted or UNSATISFIABLE


def _merged(wanted: list[tuple[int, int]]) -> list[tuple[int, int]]:
    wanted = sorted(wanted)
    merged = [wanted[0]]
    for first, last in wanted[1:]:
        if first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def multipart_parts(
    ranges: list[tuple[int, int]], *, size: int, content_type: bytes, boundary: bytes
) -> tuple[list[bytes | tuple[int, int]], int]:
    """A ``multipart/byteranges`` body as a list of literal bytes and ``(offset, length)`` slices of the file,
    and its total length (for Content-Length, known before a byte is read)."""
    parts: list[bytes | tuple[int, int]] = []
    total = 0
    for index, (first, last) in enumerate(ranges):
        head = (
            (b"\r\n" if index else b"")
            + b"--"
            + boundary
            + b"\r\ncontent-type: "
            + content_type
            + f"\r\ncontent-range: bytes {first}-{last}/{size}\r\n\r\n".encode("ascii")
        )
        parts += [head, (first, last - first + 1)]
        total += len(head) + last - first + 1
    tail = b"\r\n--" + boundary + b"--\r\n"
    parts.append(tail)
    return parts, total + len(tail)
