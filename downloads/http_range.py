"""HTTP ``Range: bytes=…`` for one file (RFC 9110 §14) and ``multipart/byteranges`` (§14.6): pure, no Django.

As Debian's nginx 1.22 answers them (it sends the bytes in production, under X-Accel-Redirect): the parts in the
client's order, overlapping ranges not merged, and the whole file (200) when the ranges add up to more than it,
so a hostile header still cannot make the hub send more than the file's size; a malformed range is 416, a header
not starting with exactly ``bytes=`` is no Range at all. A header with more than
:data:`MAX_RANGES` ranges (or longer than :data:`MAX_HEADER_LENGTH`) is ignored and the whole file sent, which the
RFC allows: a multipart answer stays at most 16 parts. The multipart framing is nginx's byte for byte (but for the
boundary's digits).
"""

from __future__ import annotations

import re

UNSATISFIABLE = "unsatisfiable"
MAX_HEADER_LENGTH = 1000
MAX_RANGES = 16
# One range as nginx's parser reads it: spaces around the numbers and the dash, no space inside a suffix range.
_SPEC_RE = re.compile(r" *(?:(\d+) *- *(\d*)|-(\d+)) *")
_MAX_OFFSET = 2**63 - 1  # nginx's off_t: a bigger number is 416, not "the end of the file"


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
    X-Accel-Redirect that, not what the hub would have sent, is what a capped download is handed. (The hub's own
    answers are the same now; only the hub's limits, which nginx does not have, make the two differ.)
    """
    wanted = _specs(header, size)
    if not isinstance(wanted, list):
        return None
    total = sum(last - first + 1 for first, last in wanted)
    return total if total <= size else None


def _specs(header: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """The ranges as asked (clipped to the file, unmerged, in header order), UNSATISFIABLE or None, read as
    nginx 1.22's range filter reads them: only a header starting with exactly ``bytes=`` (in any case) is a Range,
    a malformed range makes the whole header unsatisfiable (416), and so does a range starting past the end when no
    other range is left; an empty file is sent whole. The hub's own limits come first: a header longer than
    :data:`MAX_HEADER_LENGTH` or with more than :data:`MAX_RANGES` ranges is ignored."""
    if not header or len(header) < 7 or len(header) > MAX_HEADER_LENGTH or header[:6].lower() != "bytes=":
        return None
    specs = header[6:].split(",")
    if len(specs) > MAX_RANGES:
        return None
    wanted: list[tuple[int, int]] = []
    for spec in specs:
        match = _SPEC_RE.fullmatch(spec)
        if match is None:
            return UNSATISFIABLE
        first_digits, last_digits, suffix_digits = match.groups()
        if suffix_digits is not None:
            suffix = int(suffix_digits)
            if suffix > _MAX_OFFSET:
                return UNSATISFIABLE
            start, end = (size - suffix if suffix < size else 0), size  # end: one past the last byte
        else:
            start = int(first_digits)
            last = int(last_digits) if last_digits else None
            if start > _MAX_OFFSET or (last is not None and last > _MAX_OFFSET):
                return UNSATISFIABLE
            end = size if last is None or last >= size else last + 1
        if start < end:
            wanted.append((start, end - 1))
        elif start == 0:
            return None  # only an empty file gets here: nginx sends it (200), whatever it was asked
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
