"""HTTP ``Range: bytes=…`` for one file (RFC 9110 §14) and ``multipart/byteranges`` (§14.6): pure, no Django.

As Debian's nginx 1.22 answers them (it sends the bytes in production, under X-Accel-Redirect): the parts in the
client's order, overlapping ranges not merged, and the whole file (200) when the ranges add up to more than it,
so a hostile header still cannot make the hub send more than the file's size. A header with more than
:data:`MAX_RANGES` ranges (or longer than :data:`MAX_HEADER_LENGTH`) is ignored and the whole file sent, which the
RFC allows: a multipart answer stays at most 16 parts. The multipart framing is nginx's byte for byte (but for the
boundary's digits).
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
    """The ``(first, last)`` ranges (inclusive, in the client's order, overlaps kept), :data:`UNSATISFIABLE`
    (answer 416), or ``None`` (ignore the header, send it all: also when the ranges add up to more than the file)."""
    wanted = _specs(header, size)
    if isinstance(wanted, list) and sum(last - first + 1 for first, last in wanted) > size:
        return None
    return wanted


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
            elif first == 0:
                return None  # an empty file: nginx sends it (200), whatever it was asked
        else:
            suffix = _number(match[2])
            if size == 0:
                return None
            if suffix > 0:
                wanted.append((max(0, size - suffix), size - 1))
    return wanted or UNSATISFIABLE


def multipart_parts(
    ranges: list[tuple[int, int]], *, size: int, content_type: bytes, boundary: bytes
) -> tuple[list[bytes | tuple[int, int]], int]:
    """A ``multipart/byteranges`` body as a list of literal bytes and ``(offset, length)`` slices of the file,
    and its total length (for Content-Length, known before a byte is read). nginx's framing: each part opens with
    CRLF, the first one too."""
    parts: list[bytes | tuple[int, int]] = []
    total = 0
    for first, last in ranges:
        head = (
            b"\r\n--"
            + boundary
            + b"\r\nContent-Type: "
            + content_type
            + f"\r\nContent-Range: bytes {first}-{last}/{size}\r\n\r\n".encode("ascii")
        )
        parts += [head, (first, last - first + 1)]
        total += len(head) + last - first + 1
    tail = b"\r\n--" + boundary + b"--\r\n"
    parts.append(tail)
    return parts, total + len(tail)
