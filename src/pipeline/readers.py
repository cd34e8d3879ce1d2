"""Streaming readers: turn a byte stream (an S3 body or any ``.read(n)`` object) into numbered rows.

Memory is bounded by one read chunk plus the rows a caller holds, never by the file size. Problems with the
file as a whole (not text, bad gzip, broken CSV quoting, an unparseable JSON array) raise
:class:`UnreadableFileError`; problems with one record are left to the caller (see ``pipeline.validation``).

Rows, by format, each with its 1-based line number in the (decompressed) file:

- ``csv``: ``dict[str, str]`` (header name -> cell, every column present), numbered by the physical line
  the record starts on (the header is line 1). A row whose field count differs from the header's is a
  :class:`MalformedRow` holding the raw fields. Blank lines are skipped.
- ``jsonl``: the line's raw ``bytes``, unparsed, so the caller can parse it however is fastest. Blank
  lines are skipped.
- ``json`` (a top-level array): each element as parsed (dict, list, str, int, float, bool or None),
  numbered by its position in the array.

A zero-byte file, or one holding only whitespace (and a byte-order mark), has no rows: it is not an error.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Literal, Protocol, TypeAlias

import ijson  # type: ignore[import-untyped]  # ships no type hints

Format = Literal["csv", "jsonl", "json"]
Row: TypeAlias = object
"""``dict[str, str]`` or :class:`MalformedRow` (csv), ``bytes`` (jsonl), any JSON value (json)."""

CHUNK_SIZE = 1 << 20
"""Bytes asked of the stream (or of the gzip decoder) at a time."""
GUNZIP_CHUNK_SIZE = 256 << 10
"""Decompressed bytes asked of the gzip decoder at a time."""
_JSON_BUFFER = 64 << 10
"""Bytes handed to ijson at a time: it builds every element of a buffer at once (~8x the bytes)."""
MAX_LINE_BYTES = 16 << 20
"""A longer line is not text we can load: refuse it rather than buffer without bound."""

_NL = b"\n"
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = codecs.BOM_UTF8
# Formats that would otherwise surface as a baffling "not valid UTF-8"; checked on the first bytes.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a zip archive"),
    *((b"BZh%d1AY&SY" % level, "bzip2 data") for level in range(1, 10)),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
    (b"\xff\xfe", "UTF-16 text (little-endian byte-order mark)"),
    (b"\xfe\xff", "UTF-16 text (big-endian byte-order mark)"),
)
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


class UnreadableFileError(ValueError):
    """The file as a whole cannot be read: quarantine it; the message says exactly why and where."""


@dataclass(frozen=True, slots=True)
class MalformedRow:
    """A CSV record that cannot be mapped onto the header; ``raw`` is its list of fields."""

    reason: str
    raw: list[str]


class Readable(Protocol):
    """What the readers need of a stream: ``read(n)`` (a file, BytesIO, botocore's StreamingBody)."""

    def read(self, size: int = ..., /) -> bytes: ...


def detect_format(key: str, declared: Format | None = None) -> tuple[Format, bool]:
    """(format, gzipped) from the object key's suffix; a declared format wins over the name.

    ``users.csv``, ``x.jsonl.gz``, ``x.ndjson``, ``x.json`` ... (case-insensitive). Gzip is also recognised
    from the content's magic bytes when reading, so an unmarked gzip file is still read correctly.
    """
    name = key.rsplit("/", 1)[-1].lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[:-3]
    if declared is not None:
        return declared, gzipped
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt, gzipped
    raise UnreadableFileError(
        f"cannot tell the format of {key!r}: expected a name ending in .csv, .jsonl, .ndjson or .json "
        "(optionally .gz), or a declared format"
    )


def iter_rows(
    stream: Readable,
    fmt: Format,
    *,
    gzipped: bool = False,
    delimiter: str = ",",
    on_header: Callable[[Sequence[str]], None] | None = None,
    line_offset: int = 0,
) -> Iterator[tuple[int, Row]]:
    """Yield ``(line number, row)`` for each record of the stream; see the module docstring for row types.

    ``gzipped`` says the name promised gzip (the content must then be gzip); gzip content is decompressed
    whatever the name. ``on_header`` (CSV only) is called once with the trimmed header names before the
    first row, so a caller can refuse a file whose columns are wrong; it may raise UnreadableFileError.

    ``line_offset`` is added to every line number, in rows and in error messages: a part of a file
    (:mod:`pipeline.splits`) is numbered as the whole file is.
    """
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be a single character, not {delimiter!r}")
    chunks = iter_content(stream, gzipped)
    if fmt == "csv":
        return _csv_rows(chunks, delimiter, on_header, line_offset)
    if fmt == "jsonl":
        return _jsonl_rows(chunks, line_offset)
    if fmt == "json":
        return _json_array_rows(chunks)
    raise ValueError(f"unknown format {fmt!r}")


# --- bytes: decompression and sniffing ----------------------------------------------------------------


class _Prepended:
    """A stream with some already-read bytes put back in front (what gzip needs after we sniffed)."""

    def __init__(self, head: bytes, stream: Readable) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size < 0 or size >= len(self._head):
            head, self._head = self._head, b""
            return head
        head, self._head = self._head[:size], self._head[size:]
        return head

    def seek(self, offset: int, /) -> int:
        # Reading never seeks; GzipFile only would to rewind, which nothing here asks for.
        raise io.UnsupportedOperation("seek")


def _read_at_least(stream: Readable, size: int) -> bytes:
    """Read until ``size`` bytes or the end: a network stream may return fewer bytes than asked."""
    data = b""
    while len(data) < size:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            break
        data += chunk
    return data


def iter_content(stream: Readable, gzipped: bool) -> Iterator[bytes]:
    """The file's content in chunks of at most CHUNK_SIZE-ish bytes, decompressed if it is gzip.

    Other binary content (zip, bzip2, xz, zstd, UTF-16) raises :class:`UnreadableFileError`; the bytes are
    not checked as text here (the row readers do that).
    """
    head = _read_at_least(stream, 16)
    if head.startswith(_GZIP_MAGIC):
        yield from _gunzip(_Prepended(head, stream))
        return
    if gzipped and head:
        raise UnreadableFileError(
            "not gzip data: the name ends in .gz but the content does not start with the gzip magic bytes"
        )
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            raise UnreadableFileError(f"unsupported content: this is {what}; expected UTF-8 text or gzip")
    if head:
        yield head
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def _gunzip(fileobj: _Prepended) -> Iterator[bytes]:
    # GzipFile.read(n) bounds each output chunk, so a decompression bomb cannot exhaust memory. A read that
    # meets a truncated end raises and loses its chunk: smaller chunks keep more of what came before.
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as gz:
        try:
            while chunk := gz.read(GUNZIP_CHUNK_SIZE):
                yield chunk
        except EOFError:
            raise UnreadableFileError(
                "truncated gzip data: the file ends before the gzip end-of-stream marker"
            ) from None
        except gzip.BadGzipFile as exc:
            raise UnreadableFileError(f"bad gzip data: {exc}") from None
        except zlib.error as exc:
            raise UnreadableFileError(f"corrupt gzip data: {exc}") from None


# --- text: UTF-8 checks with exact positions ----------------------------------------------------------


def _where(block: bytes, index: int, offset: int, line: int) -> str:
    return f"byte offset {offset + index} (line {line + block.count(_NL, 0, index)})"


def _check_text(block: bytes, offset: int, line: int, *, final: bool = True) -> str:
    """Decode a block of whole lines, naming the byte offset and line of the first problem.

    With ``final=False`` an incomplete character at the very end is not an error (more bytes may follow).
    """
    nul = block.find(b"\x00")
    if nul >= 0:
        raise UnreadableFileError(f"binary data, not text: NUL byte at {_where(block, nul, offset, line)}")
    try:
        return codecs.utf_8_decode(block, "strict", final)[0]
    except UnicodeDecodeError as exc:
        where = _where(block, exc.start, offset, line)
        raise UnreadableFileError(f"not valid UTF-8 at {where}: {exc.reason}") from None


def _line_blocks(chunks: Iterator[bytes], line_offset: int = 0) -> Iterator[tuple[int, bytes, str]]:
    """Yield ``(first line number, bytes, text)`` for runs of whole lines, checked as UTF-8 text.

    Splitting bytes at ``\\n`` is safe in UTF-8 (no multi-byte sequence contains that byte), so each block
    decodes on its own and an error's position is exact.
    """
    line, offset, pending = 1 + line_offset, 0, b""
    for index, chunk in enumerate(chunks):
        data = pending + chunk if pending else chunk
        if index == 0 and data.startswith(_BOM):
            data, offset = data[len(_BOM) :], len(_BOM)
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            pending = data
            if len(pending) > MAX_LINE_BYTES:
                _check_text(pending, offset, line, final=False)  # a better message if it is binary
                raise UnreadableFileError(f"line {line} is longer than {MAX_LINE_BYTES} bytes")
            continue
        block, pending = data[:cut], data[cut:]
        yield line, block, _check_text(block, offset, line)
        line += block.count(b"\n")
        offset += cut
    if pending:
        yield line, pending, _check_text(pending, offset, line)


class _CheckedReader:
    """A file-like view of the content for ijson: UTF-8 and NUL checked as it flows, BOM dropped."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._offset = 0
        self._buffer = b""
        self._started = False

    def _next_chunk(self) -> bytes:
        chunk = next(self._chunks, b"")
        if not self._started:
            self._started = True
            if chunk.startswith(_BOM):
                chunk, self._offset = chunk[len(_BOM) :], len(_BOM)
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise UnreadableFileError(f"binary data, not text: NUL byte at byte offset {self._offset + nul}")
        pending = len(self._decoder.getstate()[0])
        try:
            self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            where = self._offset - pending + exc.start
            raise UnreadableFileError(f"not valid UTF-8 at byte offset {where}: {exc.reason}") from None
        self._offset += len(chunk)
        return chunk

    def first_significant_char(self) -> str:
        """The first non-whitespace character ("" if there is none), left in place for the parser."""
        while True:
            stripped = self._buffer.lstrip()
            if stripped:
                self._buffer = stripped
                return stripped[:4].decode("utf-8", "replace")[:1]
            self._buffer = self._next_chunk()
            if not self._buffer:
                return ""

    def read(self, size: int = -1, /) -> bytes:
        if not self._buffer:
            self._buffer = self._next_chunk()
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


# --- formats -----------------------------------------------------------------------------------------


def _csv_rows(
    chunks: Iterator[bytes],
    delimiter: str,
    on_header: Callable[[Sequence[str]], None] | None,
    line_offset: int = 0,
) -> Iterator[tuple[int, Row]]:
    # StringIO(newline="") splits at \n, \r\n and \r without translating them: what csv.reader expects,
    # so quoted fields keep their embedded newlines. Blocks end at \n, so no line straddles two blocks.
    blocks = _line_blocks(chunks, line_offset)
    lines = chain.from_iterable(io.StringIO(text, newline="") for _, _, text in blocks)
    # strict: broken quoting is an error, not a silent merge of the lines that follow into one field.
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header: list[str] | None = None
    width = 0
    start = 1 + line_offset
    try:
        for fields in reader:
            line, start = start, reader.line_num + 1 + line_offset
            if not fields:
                continue
            if header is None:
                if not any(name.strip() for name in fields):
                    continue  # whitespace before the header
                header = [name.strip() for name in fields]
                width = len(header)
                _check_unique(header)
                if on_header is not None:
                    on_header(header)
                continue
            if len(fields) == width:
                yield line, dict(zip(header, fields, strict=True))
            elif any(field.strip() for field in fields):
                reason = f"row has {len(fields)} fields but the header has {width}"
                yield line, MalformedRow(reason, fields)
    except csv.Error as exc:
        raise UnreadableFileError(f"line {start}: malformed CSV: {exc}") from None


def _check_unique(header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise UnreadableFileError(f"CSV header names the column {name!r} twice")
        seen.add(name)


def _jsonl_rows(chunks: Iterator[bytes], line_offset: int = 0) -> Iterator[tuple[int, Row]]:
    for first, block, _ in _line_blocks(chunks, line_offset):
        for number, line in enumerate(block.split(b"\n"), first):
            if line and not line.isspace():
                yield number, line


def _json_array_rows(chunks: Iterator[bytes]) -> Iterator[tuple[int, Row]]:
    reader = _CheckedReader(chunks)
    first = reader.first_significant_char()
    if not first:
        return
    if first != "[":
        raise UnreadableFileError(
            f"JSON: the top-level value must be an array of records, but it starts with {first!r}"
        )
    position = 0
    try:
        for position, element in enumerate(
            ijson.items(reader, "item", use_float=True, buf_size=_JSON_BUFFER), 1
        ):
            yield position, element
    except ijson.JSONError as exc:
        reason = str(exc).split("\n", 1)[0].removeprefix("parse error: ")
        raise UnreadableFileError(f"invalid JSON array after element {position}: {reason}") from None
