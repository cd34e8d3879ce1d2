"""Streaming readers: formats, encodings, compression, file-level errors, and bounded memory."""

from __future__ import annotations

import gzip
import io
import random
import subprocess
import sys
from collections.abc import Callable, Iterator

import orjson
import pytest

from pipeline import readers
from pipeline.readers import Format, MalformedRow, UnreadableFileError, detect_format, iter_rows

USERS_CSV = (
    "user_id,first_name,last_name,email,gender,age\n"
    "u1,Ann,Lee,ann@example.com,F,42\n"
    "u2,Bob,Ray,bob@example.com,M,37\n"
)
USERS_JSONL = (
    '{"user_id": "u1", "email": "ann@example.com", "age": 42}\n'
    '{"user_id": "u2", "email": "bob@example.com", "age": 37}\n'
)
USERS_JSON = '[{"user_id": "u1", "email": "ann@example.com", "age": 42},\n {"user_id": "u2", "age": 37.5}]'


def rows(data: bytes, fmt: Format, **kwargs: object) -> list[tuple[int, object]]:
    return list(iter_rows(io.BytesIO(data), fmt, **kwargs))  # type: ignore[arg-type]


class TrickleStream:
    """A stream that hands out at most ``step`` bytes per read, as a slow network body may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(self._step if size < 0 else min(size, self._step))


class GeneratedStream:
    """``total`` bytes of a file made on demand from ``head`` and repeated ``line(n)`` calls; counts reads."""

    def __init__(self, head: bytes, line: Callable[[int], bytes], tail: bytes, total: int) -> None:
        self._parts = self._generate(head, line, tail, total)
        self._buffer = b""
        self.bytes_read = 0

    @staticmethod
    def _generate(head: bytes, line: Callable[[int], bytes], tail: bytes, total: int) -> Iterator[bytes]:
        yield head
        produced, n = len(head), 0
        while produced < total:
            block = b"".join(line(n + i) for i in range(1000))
            n += 1000
            produced += len(block)
            yield block
        yield tail

    def read(self, size: int = -1, /) -> bytes:
        while len(self._buffer) < size:
            part = next(self._parts, b"")
            if not part:
                break
            self._buffer += part
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self.bytes_read += len(data)
        return data


# --- format detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("users.csv", ("csv", False)),
        ("in/2024/Users Export.CSV.GZ", ("csv", True)),
        ("users.jsonl", ("jsonl", False)),
        ("users.ndjson.gz", ("jsonl", True)),
        ("users.json", ("json", False)),
        ("a.b/users.json.gz", ("json", True)),
    ],
)
def test_detect_format_from_the_name(key: str, expected: tuple[str, bool]) -> None:
    assert detect_format(key) == expected


def test_declared_format_wins_and_gzip_still_comes_from_the_name() -> None:
    assert detect_format("users.txt", "csv") == ("csv", False)
    assert detect_format("users.json.gz", "jsonl") == ("jsonl", True)


def test_unknown_suffix_without_declaration_is_a_file_error() -> None:
    with pytest.raises(UnreadableFileError, match=r"cannot tell the format of 'users\.xlsx'"):
        detect_format("users.xlsx")


# --- CSV ------------------------------------------------------------------------------------------------


def test_csv_rows_are_header_dicts_numbered_by_line() -> None:
    assert rows(USERS_CSV.encode(), "csv") == [
        (
            2,
            {
                "user_id": "u1",
                "first_name": "Ann",
                "last_name": "Lee",
                "email": "ann@example.com",
                "gender": "F",
                "age": "42",
            },
        ),
        (
            3,
            {
                "user_id": "u2",
                "first_name": "Bob",
                "last_name": "Ray",
                "email": "bob@example.com",
                "gender": "M",
                "age": "37",
            },
        ),
    ]


def test_csv_with_bom_crlf_and_quoted_fields_holding_newlines_and_delimiters() -> None:
    data = (
        "\ufeffUserId,FirstName,Note\r\n"
        'u1,"Smith, Ann","line one\r\nline two"\r\n'
        'u2,"He said ""hi""",plain\r\n'
        "u3,Eve,last\r\n"
    ).encode()
    assert rows(data, "csv") == [
        (2, {"UserId": "u1", "FirstName": "Smith, Ann", "Note": "line one\r\nline two"}),
        (4, {"UserId": "u2", "FirstName": 'He said "hi"', "Note": "plain"}),
        (5, {"UserId": "u3", "FirstName": "Eve", "Note": "last"}),
    ]


def test_csv_with_a_declared_semicolon_delimiter() -> None:
    data = b"user_id;email;note\nu1;a@b.cc;x,y\nu2;c@d.ee;\n"
    assert rows(data, "csv", delimiter=";") == [
        (2, {"user_id": "u1", "email": "a@b.cc", "note": "x,y"}),
        (3, {"user_id": "u2", "email": "c@d.ee", "note": ""}),
    ]


def test_csv_skips_blank_lines_trims_header_names_and_keeps_the_last_line_without_newline() -> None:
    data = b"\n user_id , email\n\nu1,a@b.cc\n   \nu2,c@d.ee"
    assert rows(data, "csv") == [
        (4, {"user_id": "u1", "email": "a@b.cc"}),
        (6, {"user_id": "u2", "email": "c@d.ee"}),
    ]


def test_csv_row_with_the_wrong_number_of_fields_is_a_malformed_row() -> None:
    data = b"user_id,email\nu1,a@b.cc\nu2,Smith, Ann,c@d.ee\nu3\n"
    assert rows(data, "csv") == [
        (2, {"user_id": "u1", "email": "a@b.cc"}),
        (3, MalformedRow("row has 4 fields but the header has 2", ["u2", "Smith", " Ann", "c@d.ee"])),
        (4, MalformedRow("row has 1 fields but the header has 2", ["u3"])),
    ]


def test_header_only_csv_has_no_rows_but_reports_its_header() -> None:
    seen: list[list[str]] = []
    assert rows(b"UserId,Email\r\n", "csv", on_header=lambda header: seen.append(list(header))) == []
    assert seen == [["UserId", "Email"]]


def test_csv_header_callback_can_refuse_the_file_before_any_row() -> None:
    def refuse(header: object) -> None:
        raise UnreadableFileError("wrong columns")

    with pytest.raises(UnreadableFileError, match="wrong columns"):
        rows(USERS_CSV.encode(), "csv", on_header=refuse)


def test_csv_header_naming_a_column_twice_is_a_file_error() -> None:
    with pytest.raises(UnreadableFileError, match="names the column 'email' twice"):
        rows(b"user_id,email,email\nu1,a,b\n", "csv")


def test_broken_csv_quoting_is_a_file_error_naming_the_line() -> None:
    with pytest.raises(UnreadableFileError, match=r"line 3: malformed CSV"):
        rows(b'user_id,email\nu1,a@b.cc\nu2,"c@d.ee"x\nu3,e@f.gg\n', "csv")


def test_unterminated_quote_is_a_file_error_not_a_swallowed_file() -> None:
    with pytest.raises(UnreadableFileError, match=r"line 3: malformed CSV"):
        rows(b'user_id,email\nu1,a@b.cc\nu2,"c@d.ee\nu3,e@f.gg\n', "csv")


def test_a_bad_delimiter_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="single character"):
        rows(USERS_CSV.encode(), "csv", delimiter=";;")


# --- JSON Lines and JSON arrays ---------------------------------------------------------------------------


def test_jsonl_rows_are_raw_lines_and_blank_lines_are_skipped() -> None:
    data = b'{"a": 1}\r\n\n   \n{"a": 2}\n{not json}\n\n'
    assert rows(data, "jsonl") == [(1, b'{"a": 1}\r'), (4, b'{"a": 2}'), (5, b"{not json}")]


def test_jsonl_last_line_without_newline_is_read() -> None:
    assert rows(b'{"a": 1}\n{"a": 2}', "jsonl") == [(1, b'{"a": 1}'), (2, b'{"a": 2}')]


def test_json_array_elements_are_numbered_by_position() -> None:
    assert rows(("\ufeff " + USERS_JSON).encode(), "json") == [
        (1, {"user_id": "u1", "email": "ann@example.com", "age": 42}),
        (2, {"user_id": "u2", "age": 37.5}),
    ]


def test_json_array_elements_need_not_be_objects_the_validator_decides() -> None:
    assert rows(b'[1, "x", null, [2]]', "json") == [(1, 1), (2, "x"), (3, None), (4, [2])]


def test_empty_json_array_has_no_rows() -> None:
    assert rows(b"  [ ]\n", "json") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"user_id": "u1"}', r"top-level value must be an array of records, but it starts with '\{'"),
        (b'[{"a": 1}, {"a": 2', r"invalid JSON array after element 1: premature EOF"),
        (b'[{"a": 1}, {"a" 2}]', r"invalid JSON array after element 1: object key and value must be"),
        (b'[{"a": 1}] [{"a": 2}]', r"invalid JSON array after element 1: trailing garbage"),
    ],
)
def test_unparseable_json_array_is_a_file_error(data: bytes, message: str) -> None:
    with pytest.raises(UnreadableFileError, match=message):
        rows(data, "json")


# --- empty files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
@pytest.mark.parametrize(
    "data", [b"", b"\xef\xbb\xbf", b" \r\n\n\t"], ids=["zero-bytes", "bom-only", "blank"]
)
def test_an_empty_file_has_no_rows_and_is_not_an_error(fmt: Format, data: bytes) -> None:
    assert rows(data, fmt) == []
    assert rows(gzip.compress(data), fmt, gzipped=True) == []


def test_a_zero_byte_file_named_gz_is_just_empty() -> None:
    assert rows(b"", "csv", gzipped=True) == []


# --- gzip ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "text"), [("csv", USERS_CSV), ("jsonl", USERS_JSONL), ("json", USERS_JSON)], ids=str
)
def test_gzipped_files_give_the_same_rows(fmt: Format, text: str) -> None:
    plain = rows(text.encode(), fmt)
    assert len(plain) == 2
    assert rows(gzip.compress(text.encode()), fmt, gzipped=True) == plain
    # Recognised by its magic bytes even when the name does not say .gz.
    assert rows(gzip.compress(text.encode()), fmt) == plain


def test_concatenated_gzip_members_are_one_file() -> None:
    data = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"a": 2}\n')
    assert rows(data, "jsonl", gzipped=True) == [(1, b'{"a": 1}'), (2, b'{"a": 2}')]


def test_a_name_ending_in_gz_over_plain_data_is_not_gzip() -> None:
    with pytest.raises(UnreadableFileError, match="not gzip data"):
        rows(USERS_CSV.encode(), "csv", gzipped=True)


def test_truncated_gzip_is_a_file_error() -> None:
    data = gzip.compress(USERS_CSV.encode() * 50)
    with pytest.raises(UnreadableFileError, match="truncated gzip data"):
        rows(data[: len(data) // 2], "csv", gzipped=True)


def test_corrupt_gzip_is_a_file_error() -> None:
    data = bytearray(gzip.compress(random.Random(1).randbytes(20_000).hex().encode()))
    data[len(data) // 2 : len(data) // 2 + 8] = b"\xff" * 8
    with pytest.raises(UnreadableFileError, match="gzip data"):
        rows(bytes(data), "jsonl", gzipped=True)


def test_gzip_whose_checksum_does_not_match_is_a_file_error() -> None:
    data = bytearray(gzip.compress(USERS_JSONL.encode()))
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    with pytest.raises(UnreadableFileError, match="bad gzip data: CRC check failed"):
        rows(bytes(data), "jsonl", gzipped=True)


# --- not text ---------------------------------------------------------------------------------------------


def test_latin1_bytes_are_not_utf8_and_the_error_names_byte_and_line() -> None:
    data = "user_id,first_name\nu1,Ann\nu2,José\n".encode("latin-1")
    with pytest.raises(UnreadableFileError, match=r"not valid UTF-8 at byte offset 32 \(line 3\)"):
        rows(data, "csv")


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_latin1_bytes_in_json_are_a_file_error(fmt: Format) -> None:
    data = '[{"user_id": "u1", "first_name": "José"}]\n'.encode("latin-1")
    with pytest.raises(UnreadableFileError, match=r"not valid UTF-8 at byte offset 37"):
        rows(data, fmt)


def test_invalid_utf8_inside_gzip_is_a_file_error() -> None:
    data = gzip.compress("user_id\nJosé\n".encode("latin-1"))
    with pytest.raises(UnreadableFileError, match=r"not valid UTF-8 at byte offset 11 \(line 2\)"):
        rows(data, "csv", gzipped=True)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_binary_garbage_is_a_file_error_not_garbage_records(fmt: Format) -> None:
    garbage = random.Random(7).randbytes(64 * 1024)
    with pytest.raises(UnreadableFileError, match=r"not valid UTF-8|binary data|unsupported content"):
        rows(garbage, fmt)


def test_nul_bytes_mean_binary_data_even_when_valid_utf8() -> None:
    with pytest.raises(
        UnreadableFileError, match=r"binary data, not text: NUL byte at byte offset 16 \(line 2\)"
    ):
        rows(b"user_id,email\nu1\x00,a@b.cc\n", "csv")


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"PK\x03\x04", "a zip archive"),
        (b"BZh91AY&SY", "bzip2 data"),
        (b"\xff\xfeu\x00s\x00", "UTF-16 text"),
    ],
)
def test_other_containers_are_named_in_the_error(head: bytes, what: str) -> None:
    with pytest.raises(UnreadableFileError, match=f"unsupported content: this is {what}"):
        rows(head + b"\x00" * 100, "csv")


def test_an_endless_line_is_refused_rather_than_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(readers, "CHUNK_SIZE", 256)
    with pytest.raises(UnreadableFileError, match="line 2 is longer than 1000 bytes"):
        rows(b'{"a": 1}\n' + b"x" * 5000 + b"\n", "jsonl")


# --- streaming ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_rows_are_the_same_whatever_the_read_sizes(fmt: Format) -> None:
    text = {"csv": USERS_CSV, "jsonl": USERS_JSONL, "json": USERS_JSON}[fmt]
    expected = rows(text.encode(), fmt)
    for data in (text.encode(), gzip.compress(text.encode())):
        assert list(iter_rows(TrickleStream(data, 3), fmt)) == expected


def _user_line(fmt: Format) -> Callable[[int], bytes]:
    if fmt == "csv":
        return lambda n: f"u{n},First,Last,user{n}@example.com,F,{n % 100}\n".encode()
    if fmt == "jsonl":
        return lambda n: orjson.dumps({"user_id": f"u{n}", "email": f"user{n}@example.com"}) + b"\n"
    return lambda n: orjson.dumps({"user_id": f"u{n}", "email": f"user{n}@example.com"}) + b",\n"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_the_first_row_arrives_after_reading_a_bounded_prefix_of_a_large_file(fmt: Format) -> None:
    head = {"csv": b"user_id,first_name,last_name,email,gender,age\n", "jsonl": b"", "json": b"[\n"}[fmt]
    tail = b"{}]" if fmt == "json" else b""
    stream = GeneratedStream(head, _user_line(fmt), tail, total=256 << 20)
    first = next(iter_rows(stream, fmt))
    assert first[0] == (2 if fmt == "csv" else 1)
    assert stream.bytes_read <= 2 * readers.CHUNK_SIZE + 16


# Run in a fresh interpreter: tracemalloc counts every thread's allocations, and the test process may be
# serving an in-process emulator to other suites' worker processes at the same time.
_TRACED_JSON_ARRAY = """
import sys, tracemalloc
import orjson
from pipeline.readers import CHUNK_SIZE, iter_rows

class Generated:
    def __init__(self, size):
        self.size, self.bytes_read, self.n, self.buffer = size, 0, 0, b"["
    def read(self, _n=-1):
        more = lambda: self.bytes_read + len(self.buffer) < self.size
        while self.n >= 0 and len(self.buffer) < CHUNK_SIZE and more():
            self.n += 1
            record = {"user_id": f"u{self.n}", "email": f"user{self.n}@example.com"}
            self.buffer += orjson.dumps(record) + b",\\n"
        if self.bytes_read + len(self.buffer) >= self.size and self.n >= 0:
            self.buffer, self.n = self.buffer + b"{}]", -1  # the end, once
        chunk, self.buffer = self.buffer[:CHUNK_SIZE], self.buffer[CHUNK_SIZE:]
        self.bytes_read += len(chunk)
        return chunk

stream = Generated(int(sys.argv[1]))
tracemalloc.start()
count = sum(1 for _ in iter_rows(stream, "json"))
_, peak = tracemalloc.get_traced_memory()
print(stream.bytes_read, count, peak)
"""


def test_reading_a_large_json_array_holds_memory_far_below_its_size() -> None:
    size = 12 << 20
    result = subprocess.run(
        [sys.executable, "-c", _TRACED_JSON_ARRAY, str(size)], capture_output=True, text=True, check=True
    )
    bytes_read, count, peak = map(int, result.stdout.split())
    assert bytes_read >= size
    assert count > 200_000
    assert peak < 6 << 20  # a few read chunks, not the 12 MiB file (about 100 MiB as Python objects)
