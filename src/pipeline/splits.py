"""Split a big landed file into parts on record boundaries, so that each part fits in one invocation.

A part is a byte range ``[start, end)`` of the object, the line its first record starts on, and (CSV) the
header line its records need. Parts are planned from a random-access reader (S3 ranged GETs), read back with
a ranged GET each, and the rows of all parts, in order, are exactly the rows of the whole file, with the
whole file's line numbers.

Where a record may end:

- JSON Lines: at every ``\\n`` (JSON strings escape newlines), so a cut moves to the next newline.
- CSV: a quoted field may hold newlines. With RFC 4180 quoting (fields quoted with ``"``, a quote inside
  doubled), a ``\\n`` ends a record exactly when the number of ``"`` before it is even. The planner scans the
  object once, counting quotes and newlines with ``bytes.count``/``bytes.find`` (C loops, GB/s: far cheaper
  than parsing, which the parts do in parallel), and moves each cut to the first newline outside quotes.

A ``\\r\\n`` ends at its ``\\n``, so every part holds whole lines. Only part 0 starts with the file's
byte-order mark. Compressed files and JSON arrays cannot be split by byte range: they are one part.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.readers import Format

ReadRange = Callable[[int, int], bytes]
"""``read_range(start, end)``: the object's bytes ``[start, end)``."""

SCAN_CHUNK_BYTES = 8 << 20
SPLITTABLE: frozenset[Format] = frozenset({"csv", "jsonl"})
_QUOTE = b'"'
_NL = b"\n"


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a file: bytes ``[start, end)``, whose first record starts on line ``first_line``."""

    index: int
    count: int
    start: int
    end: int
    first_line: int
    header: str | None = None  # CSV parts after the first: the header line (no BOM, no line end)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Part:
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})


def whole(size: int) -> Part:
    return Part(index=0, count=1, start=0, end=size, first_line=1)


def plan_parts(  # noqa: PLR0912 - one scan loop; splitting it would hide the parity bookkeeping
    read_range: ReadRange,
    size: int,
    fmt: Format,
    target_bytes: int,
    *,
    chunk_bytes: int = SCAN_CHUNK_BYTES,
) -> list[Part]:
    """Parts of about ``target_bytes`` each, cut only where a record ends (see the module docstring)."""
    if fmt not in SPLITTABLE:
        raise ValueError(f"a {fmt} file cannot be split by byte range")
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    if size <= target_bytes:
        return [whole(size)]
    quoted = fmt == "csv"
    cuts: list[tuple[int, int]] = []  # (offset just after a record's newline, line number starting there)
    header: bytes | None = None
    quotes = lines = 0  # counts in the bytes before ``offset``
    next_cut = target_bytes
    offset = 0
    for chunk in _chunks(read_range, size, chunk_bytes):
        position = 0
        while True:
            newline = chunk.find(_NL, position)
            if newline < 0:
                break
            # Quote parity at this newline, counting only what lies between the last stop and it.
            if quoted:
                quotes += chunk.count(_QUOTE, position, newline)
            lines += 1
            position = newline + 1
            if quoted and quotes % 2:
                continue  # inside a quoted field: not a record end
            end = offset + position
            if header is None and quoted:
                header = _header_text(read_range, end)
            if end >= next_cut and end < size:
                cuts.append((end, lines + 1))
                next_cut = end + target_bytes
            # Jump ahead: nothing before the next cut can become a cut, so count in bulk.
            jump = next_cut - offset - 1
            if jump > position and not (header is None and quoted):
                stop = min(jump, len(chunk))
                span = chunk.rfind(_NL, position, stop)
                if span >= position:
                    if quoted:
                        quotes += chunk.count(_QUOTE, position, span)
                    lines += chunk.count(_NL, position, span)
                    position = span  # the newline at ``span`` is examined by the loop, with parity
        if quoted:
            quotes += chunk.count(_QUOTE, position)
        offset += len(chunk)
    if quoted and (header is None or not header.strip() or _NL in header or b"\r" in header):
        # Whitespace before the header, or a header spanning lines: the parts could not rebuild it exactly.
        return [whole(size)]
    starts = [(0, 1), *cuts]
    ends = [cut for cut, _ in cuts] + [size]
    count = len(starts)
    text = None if header is None else header.decode("utf-8", "replace")
    return [
        Part(index, count, start, end, first_line, None if index == 0 else text)
        for index, ((start, first_line), end) in enumerate(zip(starts, ends, strict=True))
    ]


def _chunks(read_range: ReadRange, size: int, chunk_bytes: int) -> Iterator[bytes]:
    for start in range(0, size, chunk_bytes):
        yield read_range(start, min(size, start + chunk_bytes))


def _header_text(read_range: ReadRange, end: int) -> bytes:
    """The first record (the CSV header) without BOM and line end."""
    head = read_range(0, end)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    return head.rstrip(b"\r\n")


class PartStream:
    """What the readers see of a part: for CSV parts after the first, the header line, then the part's bytes.

    ``line_offset`` turns the line numbers the readers count into the whole file's.
    """

    def __init__(self, part: Part, body: Any) -> None:
        self._body = body
        self._head = b"" if part.header is None else part.header.encode("utf-8") + b"\n"
        # Readers number the header line 1 and the part's first line 2 (or the part's first line 1).
        self.line_offset = part.first_line - (2 if self._head else 1)

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        data: bytes = self._body.read(size)
        return data

    def close(self) -> None:
        self._body.close()
