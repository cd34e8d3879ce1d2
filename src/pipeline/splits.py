"""Split a big landed file into parts on record boundaries, so that each part fits in one invocation.

A part is a byte range ``[start, end)`` of the object, the line its first record starts on, and (CSV) the
header line its records need. Parts are planned from a random-access reader (S3 ranged GETs), read back with
a ranged GET each (:class:`PartStream`), and the rows of all parts, in order, are exactly the rows of the
whole file, with the whole file's line numbers; a file that cannot be read gives the same error (message,
line and byte offset) in the first part that fails as it gives read whole. Where that could not be
guaranteed cheaply, :func:`plan_parts` returns one part, which is read exactly as the whole file.

Where a record may end:

- JSON Lines: at every ``\\n`` (JSON strings escape newlines), so a cut moves to the next newline.
- CSV: a quoted field may hold newlines. With RFC 4180 quoting (fields quoted with ``"``, a quote inside
  doubled), a ``\\n`` ends a record exactly when the number of ``"`` before it is even. The planner scans the
  object once, counting quotes and newlines with ``bytes.count``/``bytes.find`` (C loops, GB/s: far cheaper
  than parsing, which the parts do in parallel), and moves each cut to the first newline outside quotes.

A ``\\r\\n`` ends at its ``\\n``, so every part holds whole lines. Only part 0 starts with the file's
byte-order mark. Compressed files and JSON arrays cannot be split by byte range: they are one part.

One part (the file is read whole), because the parts could not be read as the whole file is:

- CSV with a ``\\r`` not followed by ``\\n`` anywhere (the csv module ends a line there, the planner counts
  ``\\n`` only: line numbers would drift, and ``\\r``-only files would repeat rows). JSON Lines is read by
  ``\\n`` alone and is split whatever its ``\\r``.
- A CSV header that the parts could not rebuild exactly: blank (the readers skip whitespace before the
  header, and a line of only delimiters, quotes and whitespace is blank to them: the common delimiters
  ``, ; | tab`` count as such whatever ``delimiter`` says), spanning lines, not valid UTF-8 or holding a NUL
  (part 0 fails on it; the others must not load under a guessed header), starting with a second byte-order
  mark or with bytes the readers sniff as another format, or one the readers refuse or read differently on
  its own (``header + "\\n"`` is what a part's stream starts with).
- CSV whose quotes next to a cut are not where RFC 4180 puts them (see "Stray quotes").
- JSON Lines whose first byte cannot start a JSON value (after a byte-order mark): it may be another format
  (gzip, zip) that the readers sniff only at the start of a stream.

Cuts never start a JSON Lines part with a byte a JSON value cannot start with (such as a byte-order mark,
which the readers strip only at the very start of a stream, or another format's magic bytes, which they
sniff there): the cut moves to the next line.

Errors name the whole file's byte offsets: the readers count offsets from the start of the stream they are
given, so :class:`PartStream` checks the bytes of a part after the first (NUL, UTF-8) itself as they flow and
raises the readers' :class:`~pipeline.readers.UnreadableFileError`, worded as they word it, with the file's
byte offset and line. Only a file with several problems may be reported by another one of them: the
whole-file readers check a block of lines for NUL, then UTF-8, then parse it, and blocks depend on how the
stream is read; a part reports the first problem of its own bytes.

Stray quotes. The CSV reader accepts a ``"`` inside an unquoted field (``27"``, ``O"Brien``) and any quote
after leading spaces, but after an odd number of such quotes the count no longer says where quoted fields
are: a later quoted newline then looks like a record end. Checking every quote is too slow in Python
(58-90 MB/s measured, against a GB/s scan), so the planner checks the quotes next to each cut: the last run
of quotes before it must be able to close a field (followed by a delimiter or line break; a run of even
length also preceded by one, a space or the start) and the first run after it must be able to open one
(preceded by a delimiter, line break, space or tab; a run of even length also followed by a delimiter, line
break or the end); otherwise one part. A cut inside a quoted field passes only if, inside that field, the
bytes next to both of those runs on the cut's side are delimiters or line breaks (a space before the first
run after it also passes), as in ``"\\nabc\\n"`` or ``",\\n,"``. In that rare case the part before the first
such cut always fails loudly (strict quoting: it ends inside a quoted field), so the file is quarantined, but
the parts after it may, in parallel, load rows the whole file would not have, and the error may name another
problem than the whole file's when the whole file fails too. Stray quotes far from any cut merely keep the
planner from cutting until the count is even again (the part grows). Legitimate but unusual quoting right
next to a cut (``x="y"`` in an unquoted field) makes the file one part.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.readers import Format, UnreadableFileError, iter_rows

ReadRange = Callable[[int, int], bytes]
"""``read_range(start, end)``: the object's bytes ``[start, end)``."""

SCAN_CHUNK_BYTES = 8 << 20
SPLITTABLE: frozenset[Format] = frozenset({"csv", "jsonl"})
_QUOTE = b'"'
_NL = b"\n"
_CR = b"\r"
_BOM = codecs.BOM_UTF8
_LONE_CR = re.compile(rb"\r[^\n]")  # one pass, faster than counting b"\r" and b"\r\n"
_COMMON_DELIMITERS = ",;|\t"
# The first byte of a JSON Lines part: what a JSON value (or a blank line) can start with.
_JSONL_CUT_STARTS = frozenset(b'{["-0123456789tfn \t\r\n')
_RUN_WINDOW = 64  # bytes looked at around a quote next to a cut; a longer run of quotes means one part


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


def plan_parts(  # noqa: PLR0911, PLR0912, PLR0915 - one scan loop; splitting it would hide the bookkeeping
    read_range: ReadRange,
    size: int,
    fmt: Format,
    target_bytes: int,
    *,
    chunk_bytes: int = SCAN_CHUNK_BYTES,
    delimiter: str = ",",
) -> list[Part]:
    """Parts of about ``target_bytes`` each, cut only where a record ends (see the module docstring).

    ``delimiter`` is the CSV field delimiter the parts will be read with.
    """
    if fmt not in SPLITTABLE:
        raise ValueError(f"a {fmt} file cannot be split by byte range")
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be a single character, not {delimiter!r}")
    if size <= target_bytes:
        return [whole(size)]
    quoted = fmt == "csv"
    around = _Around(read_range, size, delimiter)
    cuts: list[tuple[int, int]] = []  # (offset just after a record's newline, line number starting there)
    header: str | None = None
    found_header = not quoted
    count = lines = 0  # quotes and newlines in the bytes before ``offset``
    next_cut = target_bytes
    offset = 0
    ends_with_cr = False  # the previous chunk ended with b"\r"
    first_after_pending = False  # a cut whose first quote after it is still to be found
    for chunk in _chunks(read_range, size, chunk_bytes):
        around.chunk, around.chunk_offset = chunk, offset
        if offset == 0 and chunk.startswith(_BOM):
            around.content_start = len(_BOM)
        elif offset == 0 and not quoted and chunk[0] not in _JSONL_CUT_STARTS:
            return [whole(size)]  # not JSON: maybe another format (gzip) that only part 0 would be sniffed as
        if quoted:
            if (ends_with_cr and not chunk.startswith(_NL)) or (
                chunk.find(_CR) >= 0 and _LONE_CR.search(chunk) is not None
            ):
                return [whole(size)]  # a lone \r: the csv module's lines are not the planner's
            ends_with_cr = chunk.endswith(_CR)
            if first_after_pending and (first := chunk.find(_QUOTE)) >= 0:
                first_after_pending = False
                if not around.can_open(offset + first):
                    return [whole(size)]
        count_before = count
        position = 0
        while True:
            newline = chunk.find(_NL, position)
            if newline < 0:
                break
            # Quote parity at this newline, counting only what lies between the last stop and it.
            if quoted:
                count += chunk.count(_QUOTE, position, newline)
            lines += 1
            position = newline + 1
            if quoted and count % 2:
                continue  # inside a quoted field: not a record end
            end = offset + position
            if not found_header:
                header = _rebuilt_header(read_range, end, delimiter)
                if header is None:
                    return [whole(size)]
                found_header = True
            if end >= next_cut and end < size:
                if quoted:
                    before = chunk.rfind(_QUOTE, 0, position)
                    last = offset + before if before >= 0 else around.last
                    if last >= 0 and not around.can_close(last):
                        return [whole(size)]
                    after = chunk.find(_QUOTE, position)
                    if after < 0:
                        first_after_pending = True
                    elif not around.can_open(offset + after):
                        return [whole(size)]
                    cut = True
                else:
                    cut = around.byte(end) in _JSONL_CUT_STARTS
                if cut:
                    cuts.append((end, lines + 1))
                    next_cut = end + target_bytes
            # Jump ahead: nothing before the next cut can become a cut, so count in bulk.
            jump = next_cut - offset - 1
            if jump > position and found_header:
                stop = min(jump, len(chunk))
                span = chunk.rfind(_NL, position, stop)
                if span >= position:
                    if quoted:
                        count += chunk.count(_QUOTE, position, span)
                    lines += chunk.count(_NL, position, span)
                    position = span  # the newline at ``span`` is examined by the loop, with parity
        if quoted:
            count += chunk.count(_QUOTE, position)
            if count != count_before:
                around.remember_last(chunk.rfind(_QUOTE))
        offset += len(chunk)
    if quoted and (header is None or ends_with_cr):
        return [whole(size)]
    starts = [(0, 1), *cuts]
    ends = [cut for cut, _ in cuts] + [size]
    total = len(starts)
    return [
        Part(index, total, start, end, first_line, None if index == 0 else header)
        for index, ((start, first_line), end) in enumerate(zip(starts, ends, strict=True))
    ]


def _chunks(read_range: ReadRange, size: int, chunk_bytes: int) -> Iterator[bytes]:
    for start in range(0, size, chunk_bytes):
        yield read_range(start, min(size, start + chunk_bytes))


def _rebuilt_header(read_range: ReadRange, end: int, delimiter: str) -> str | None:
    """The CSV header line for parts after the first (no BOM, no line end), or None if they could not use it.

    ``end`` is where the first record ends by the quote count. The parts read ``header + "\\n"`` where the
    whole file has its first record: both must read as the same header, and as nothing else.
    """
    head = read_range(0, end)
    line = head.removeprefix(_BOM).removesuffix(_NL).removesuffix(_CR)
    if _NL in line or _CR in line or b"\x00" in line:
        return None  # a header spanning lines (or a lone \r, or binary data)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None  # part 0 fails on it; the other parts must not load under a guessed header
    blank = str.maketrans("", "", _COMMON_DELIMITERS + delimiter + '"')
    if not text.translate(blank).strip():
        return None  # blank for the readers with this delimiter, or with one the caller did not pass
    whole_file = _header_of(head, delimiter)
    if whole_file is None or whole_file != _header_of(line + _NL, delimiter):
        return None
    return text


def _header_of(data: bytes, delimiter: str) -> list[str] | None:
    """The header the readers see in ``data`` (the first record alone), or None if it is not just that."""
    seen: list[Sequence[str]] = []
    try:
        rows = list(iter_rows(io.BytesIO(data), "csv", delimiter=delimiter, on_header=seen.append))
    except UnreadableFileError:
        return None
    return None if rows or len(seen) != 1 else list(seen[0])


class _Around:
    """Bytes around quotes next to a cut: from the chunk in hand, a remembered slice, or a small ranged read.

    A cut assumes an even count of quotes before it, that is outside any quoted field. RFC 4180 then puts
    the last run of quotes before it at the end of a field and the first run after it at the start of one.
    """

    def __init__(self, read_range: ReadRange, size: int, delimiter: str) -> None:
        self._read_range = read_range
        self._size = size
        delimiters = {ord(char) for char in _COMMON_DELIMITERS + delimiter if ord(char) < 0x80}
        self._after_close = frozenset({*delimiters, ord("\r"), ord("\n")})
        self._before_open = self._after_close | {ord(" "), ord("\t")}
        self.chunk = b""
        self.chunk_offset = 0
        self.content_start = 0  # after the byte-order mark
        self.last = -1  # offset of the last quote in the chunks before ``chunk``
        self._saved: tuple[int, bytes] = (0, b"")  # bytes around ``last``

    def remember_last(self, index: int) -> None:
        """Called with ``chunk.rfind(b'"')`` once the chunk is scanned."""
        if index < 0:
            return
        self.last = self.chunk_offset + index
        start = max(0, index - _RUN_WINDOW)
        self._saved = (self.chunk_offset + start, self.chunk[start : index + 2])

    def get(self, start: int, end: int) -> bytes:
        for offset, data in ((self.chunk_offset, self.chunk), self._saved):
            if offset <= start and end <= offset + len(data):
                return data[start - offset : end - offset]
        return self._read_range(start, end)

    def byte(self, offset: int) -> int:
        return self.get(offset, offset + 1)[0]

    def can_close(self, last: int) -> bool:
        """Whether the run of quotes ending at ``last`` (an odd count before it) can close a field."""
        start = max(0, last - _RUN_WINDOW)
        data = self.get(start, last + 2)  # the byte after ``last`` exists: the cut's newline is after it
        rest = data[:-1].rstrip(_QUOTE)
        run = len(data) - 1 - len(rest)
        if not rest and start > 0:
            return False  # a run of quotes too long to judge
        if data[-1] not in self._after_close:
            return False
        if run % 2:
            return True
        # An even run ends where it started: outside, so it opened a field (and closed it).
        return last + 1 - run <= self.content_start or rest[-1] in self._before_open

    def can_open(self, first: int) -> bool:
        """Whether the run of quotes starting at ``first`` (an even count before it) can open a field."""
        data = self.get(first - 1, min(self._size, first + _RUN_WINDOW))
        if data[0] not in self._before_open:
            return False
        rest = data[1:].lstrip(_QUOTE)
        run = len(data) - 1 - len(rest)
        if not rest:
            return first + run >= self._size  # the run ends the file, or is too long to judge
        # An even run ends outside: it opened a field and closed it, so a delimiter or line end follows.
        return run % 2 == 1 or rest[0] in self._after_close


class PartStream:
    """What the readers see of a part: for CSV parts after the first, the header line, then the part's bytes.

    ``line_offset`` turns the line numbers the readers count into the whole file's. The bytes of a part
    after the first are checked here (NUL, UTF-8) before the readers see them, so that an error names the
    file's byte offset, not one counted from the part (the readers cannot be told where a part starts).
    """

    def __init__(self, part: Part, body: Any) -> None:
        self._body = body
        self._head = b"" if part.header is None else part.header.encode("utf-8") + b"\n"
        # Readers number the header line 1 and the part's first line 2 (or the part's first line 1).
        self.line_offset = part.first_line - (2 if self._head else 1)
        # Part 0 starts where the file does: the readers' own offsets are the file's.
        self._check = part.start > 0
        self._offset = part.start  # the file's offset of the next byte of the body
        self._line = part.first_line  # the file's line of that byte
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        data: bytes = self._body.read(size)
        if self._check:
            self._check_text(data)
        return data

    def _check_text(self, data: bytes) -> None:
        """Raise what the readers raise for a NUL or invalid UTF-8, with the file's offset and line."""
        nul = data.find(b"\x00")
        if nul >= 0:
            raise UnreadableFileError(f"binary data, not text: NUL byte at {self._where(data, nul)}")
        pending = len(self._decoder.getstate()[0])
        if pending or not data.isascii():
            try:
                self._decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                where = self._where(data, exc.start - pending)
                raise UnreadableFileError(f"not valid UTF-8 at {where}: {exc.reason}") from None
        self._line += data.count(_NL)
        self._offset += len(data)

    def _where(self, data: bytes, index: int) -> str:
        # ``index`` < 0: in the bytes of the previous read that began a character (they hold no newline).
        line = self._line + data.count(_NL, 0, max(0, index))
        return f"byte offset {self._offset + index} (line {line})"

    def close(self) -> None:
        self._body.close()
