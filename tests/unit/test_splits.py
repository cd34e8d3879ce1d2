"""Splitting files into parts: a cut never falls inside a record, and the parts' rows are the file's rows."""

from __future__ import annotations

import codecs
import io
import itertools
import random

import pytest

from pipeline.readers import Format, UnreadableFileError, iter_rows
from pipeline.splits import Part, PartStream, plan_parts, whole


def reader(data: bytes):  # type: ignore[no-untyped-def]
    return lambda start, end: data[start:end]


def rows_of_parts(data: bytes, fmt: Format, target: int, chunk: int = 1 << 20) -> list[tuple[int, object]]:
    parts = plan_parts(reader(data), len(data), fmt, target, chunk_bytes=chunk)
    assert parts[0].start == 0
    assert parts[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    rows: list[tuple[int, object]] = []
    for part in parts:
        stream = PartStream(part, io.BytesIO(data[part.start : part.end]))
        rows += list(iter_rows(stream, fmt, line_offset=stream.line_offset))
    return rows


def random_csv(seed: int) -> bytes:
    rng = random.Random(seed)
    end = rng.choice(["\n", "\r\n"])
    cells = ["plain", "with space", '"quoted, comma"', '"multi\nline"', '"say ""hi"""', "ünïcødé", ""]
    lines = ["id,name,note"]
    for n in range(rng.randint(0, 60)):
        if rng.random() < 0.05:
            lines.append("")  # a blank line
        lines.append(f"{n},{rng.choice(cells)},{rng.choice(cells)}")
    text = end.join(lines) + (end if rng.random() < 0.7 else "")  # sometimes no newline at the end
    data = text.encode()
    return codecs.BOM_UTF8 + data if rng.random() < 0.3 else data


def random_jsonl(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = [f'{{"id": {n}, "text": "a\\nb {"x" * rng.randint(0, 30)}"}}' for n in range(rng.randint(0, 60))]
    blank = ["", "  "]
    text = "\n".join(line if rng.random() > 0.05 else rng.choice(blank) for line in lines)
    return (text + ("\n" if rng.random() < 0.7 else "")).encode()


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("target", [1, 7, 64, 300])
def test_csv_parts_give_exactly_the_files_rows_with_its_line_numbers(seed: int, target: int) -> None:
    data = random_csv(seed)
    assert rows_of_parts(data, "csv", target, chunk=97) == list(iter_rows(io.BytesIO(data), "csv"))


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("target", [1, 7, 64, 300])
def test_jsonl_parts_give_exactly_the_files_rows_with_its_line_numbers(seed: int, target: int) -> None:
    data = random_jsonl(seed)
    assert rows_of_parts(data, "jsonl", target, chunk=53) == list(iter_rows(io.BytesIO(data), "jsonl"))


def test_a_quoted_newline_is_never_a_cut() -> None:
    data = b'id,note\n1,"a\nb\nc\nd"\n2,x\n'
    parts = plan_parts(reader(data), len(data), "csv", 10)
    assert [data[p.start : p.end] for p in parts] == [b'id,note\n1,"a\nb\nc\nd"\n', b"2,x\n"]
    assert parts[1].first_line == 6
    assert parts[1].header == "id,note"


def test_crlf_and_bom_stay_where_they_belong() -> None:
    data = codecs.BOM_UTF8 + b"id,n\r\n1,a\r\n2,b\r\n3,c"
    parts = plan_parts(reader(data), len(data), "csv", 8)
    assert all(data[p.start : p.end].endswith(b"\r\n") for p in parts[:-1])
    assert all(not data[p.start : p.end].startswith(codecs.BOM_UTF8) for p in parts[1:])
    assert {p.header for p in parts[1:]} == {"id,n"}
    assert parts[-1].end == len(data)


def test_a_small_file_is_one_part() -> None:
    assert plan_parts(reader(b"id\n1\n"), 5, "csv", 100) == [Part(0, 1, 0, 5, 1)]


def test_compressed_and_array_files_are_not_split() -> None:
    with pytest.raises(ValueError, match="cannot be split"):
        plan_parts(reader(b"[]"), 2, "json", 1)


def test_a_malformed_part_names_the_files_line() -> None:
    data = b'id,n\n1,a\n2,b\n3,"broken\n'
    parts = plan_parts(reader(data), len(data), "csv", 5)
    last = parts[-1]
    stream = PartStream(last, io.BytesIO(data[last.start : last.end]))
    with pytest.raises(UnreadableFileError, match="line 4: malformed CSV"):
        list(iter_rows(stream, "csv", line_offset=stream.line_offset))
    assert last.first_line == 4


def test_parts_round_trip_through_json() -> None:
    part = Part(2, 5, 100, 200, 17, "id,name")
    assert Part.from_dict(part.to_dict()) == part


@pytest.mark.parametrize(
    "data",
    [
        b"\n  \nid,n\n1,a\n2,b\n3,c\n",  # whitespace before the header: the readers skip it, parts could not
        b'"i\nd",n\n1,a\n2,b\n3,c\n',  # a header spanning two lines
    ],
)
def test_a_header_the_parts_could_not_rebuild_means_one_part(data: bytes) -> None:
    assert plan_parts(reader(data), len(data), "csv", 4) == [Part(0, 1, 0, len(data), 1)]


# --- split reading equals whole-file reading, or the plan is one part ----------------------------------

Outcome = tuple[list[tuple[int, object]], str | None]


class Trickle:
    """A part's body handing out at most ``step`` bytes per read, as a slow network body may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(self._step if size < 0 else min(size, self._step))

    def close(self) -> None:
        self._data.close()


def read_whole(data: bytes, fmt: Format) -> Outcome:
    rows: list[tuple[int, object]] = []
    try:
        rows.extend(iter_rows(io.BytesIO(data), fmt))
    except UnreadableFileError as exc:
        return rows, str(exc)
    return rows, None


def read_parts(parts: list[Part], data: bytes, fmt: Format, step: int | None = None) -> Outcome:
    """All parts' rows in order, and the first failing part's error (the parts run in parallel)."""
    assert parts[0].start == 0
    assert parts[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    rows: list[tuple[int, object]] = []
    errors: list[str] = []
    for part in parts:
        body = data[part.start : part.end]
        stream = PartStream(part, io.BytesIO(body) if step is None else Trickle(body, step))
        try:
            rows.extend(iter_rows(stream, fmt, line_offset=stream.line_offset))
        except UnreadableFileError as exc:
            errors.append(str(exc))
    return rows, errors[0] if errors else None


def first_failing_part(parts: list[Part], data: bytes, fmt: Format) -> int:
    for part in parts:
        stream = PartStream(part, io.BytesIO(data[part.start : part.end]))
        try:
            list(iter_rows(stream, fmt, line_offset=stream.line_offset))
        except UnreadableFileError:
            return part.index
    return -1


def assert_reads_as_whole(data: bytes, fmt: Format, target: int, chunk: int, step: int | None = None) -> int:
    """Split reading gives the whole file's rows, or its error (same message); returns the part count."""
    parts = plan_parts(reader(data), len(data), fmt, target, chunk_bytes=chunk)
    whole_rows, whole_error = read_whole(data, fmt)
    part_rows, part_error = read_parts(parts, data, fmt, step)
    assert part_error == whole_error
    if whole_error is None:
        assert part_rows == whole_rows
    return len(parts)


def is_one_part(data: bytes, fmt: Format = "csv", target: int = 4, chunk: int = 1 << 20) -> bool:
    return plan_parts(reader(data), len(data), fmt, target, chunk_bytes=chunk) == [whole(len(data))]


def random_messy_csv(seed: int) -> bytes:
    """CSV as it lands: lone \\r, blank lines before the header, unicode headers, stray quotes, bad bytes.

    Each file has a few of these troubles (or none), so that many files still split.
    """
    rng = random.Random(seed)
    end = rng.choice(["\n", "\r\n", "\r"] if rng.random() < 0.1 else ["\n", "\r\n"])
    header = rng.choice(["id,name,note", "ïd,nämé,nøte", '"id","名前",note', "id , name ,note "])
    cells = ["plain", '"quoted, comma"', '"multi\nline"', '"say ""hi"""', "ünïcødé", "", '""']
    if rng.random() < 0.3:
        cells.append(' "spaced"')  # quotes after a space: not quoting for the csv module
    if rng.random() < 0.1:
        cells.append(' "sp\nlit"')
    if rng.random() < 0.25:
        cells.append(rng.choice(['27"', 'O"Brien']))  # a stray quote in an unquoted field
    if rng.random() < 0.05:
        cells.append('"lone\rcr"')
    lines = [header]
    for n in range(rng.randint(0, 60)):
        if rng.random() < 0.05:
            lines.append(rng.choice(["", "  "]))
        lines.append(f"{n},{rng.choice(cells)},{rng.choice(cells[:7] if rng.random() < 0.9 else cells)}")
    if rng.random() < 0.05:
        lines.insert(rng.randrange(len(lines)), "9,lone\rcr,x")
    text = end.join(lines) + (end if rng.random() < 0.7 else "")
    if rng.random() < 0.1:
        text = rng.choice(["\n", "  \n", "\r\n\r\n", ",,\n"]) + text  # before the header
    data = text.encode()
    problem = rng.random()
    if problem < 0.1:  # one kind of bad byte per file: which one a message names may depend on chunking
        at = rng.randrange(len(data) + 1)
        data = data[:at] + rng.choice([b"\xff", b"\xc3(", b"\xe2\x82"]) + data[at:]
    elif problem < 0.15:
        at = rng.randrange(len(data) + 1)
        data = data[:at] + b"\x00" + data[at:]
    elif problem < 0.2:
        data = data.replace(b"\xc3\xaf", b"\xc3", 1)  # a broken character in the header (if unicode)
    return codecs.BOM_UTF8 + data if rng.random() < 0.3 else data


def random_messy_jsonl(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = [
        f'{{"id": {n}, "text": "a\\nb {"é" * rng.randint(0, 9)}"}}'.encode()
        for n in range(rng.randint(0, 50))
    ]
    for _ in range(rng.randint(0, 3)):  # lines the readers' stream sniffing would mistake at a part's start
        lines.insert(
            rng.randint(0, len(lines)), rng.choice([codecs.BOM_UTF8 + b'{"id": -1}', b"PK\x03\x04x", b"  "])
        )
    data = b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")
    if data and rng.random() < 0.3:
        at = rng.randrange(len(data))
        data = data[:at] + rng.choice([b"\xff", b"\x00", b"\xc3"]) + data[at:]
    return data


@pytest.mark.parametrize("seed", range(120))
@pytest.mark.parametrize(("target", "chunk"), [(1, 7), (9, 3), (40, 64), (150, 1 << 20)])
def test_messy_csv_parts_read_as_the_whole_file(seed: int, target: int, chunk: int) -> None:
    assert_reads_as_whole(random_messy_csv(seed), "csv", target, chunk)


@pytest.mark.parametrize("seed", range(80))
@pytest.mark.parametrize(("target", "chunk", "step"), [(1, 5, None), (30, 11, 2), (120, 1 << 20, 3)])
def test_messy_jsonl_parts_read_as_the_whole_file(
    seed: int, target: int, chunk: int, step: int | None
) -> None:
    assert_reads_as_whole(random_messy_jsonl(seed), "jsonl", target, chunk, step)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 97])
def test_clean_files_still_split_whatever_the_chunk_size(seed: int, chunk: int) -> None:
    data = random_csv(seed)
    parts = assert_reads_as_whole(data, "csv", 7, chunk)
    if data.count(b"\n") > 8:
        assert parts > 1


# 1. a lone \r


@pytest.mark.parametrize(
    "data",
    [
        b"id,n\r1,a\r2,b\r3,c\r4,d\r",  # \r-only line ends: the csv module's lines, not the planner's
        b'id,n\n1,"a\rb"\n2,b\n3,c\n4,d\n',  # in a quoted field: still a line to the csv module
        b"id,n\n1,a\n2,b\n3,c\n4,d\r",  # at the very end
        b"id,n\r\n1,a\r\r\n2,b\r\n3,c\r\n",
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_a_lone_carriage_return_means_one_part(data: bytes, chunk: int) -> None:
    assert is_one_part(data, chunk=chunk)
    assert assert_reads_as_whole(data, "csv", 4, chunk) == 1


def test_r_only_line_ends_used_to_repeat_rows() -> None:
    data = b"id,n\r1,a\r2,b\r3,c\r4,d\r"
    rows, error = read_whole(data, "csv")
    assert error is None
    assert [line for line, _ in rows] == [2, 3, 4, 5]
    assert plan_parts(reader(data), len(data), "csv", 4) == [whole(len(data))]


def test_crlf_across_a_chunk_boundary_is_not_a_lone_cr() -> None:
    data = b"id,n\r\n1,a\r\n2,b\r\n3,c\r\n4,d\r\n"
    for chunk in range(1, len(data) + 1):
        assert len(plan_parts(reader(data), len(data), "csv", 6, chunk_bytes=chunk)) > 1


def test_jsonl_splits_at_newlines_whatever_its_carriage_returns() -> None:
    data = b'{"a": 1}\r{"a": 2}\n{"a": 3}\r\n{"a": 4}\n'
    assert not is_one_part(data, "jsonl")
    assert_reads_as_whole(data, "jsonl", 4, 3)


# 2. a header the parts could not rebuild


@pytest.mark.parametrize(
    "data",
    [
        b"id,n\xff\n1,a\n2,b\n3,c\n",  # not valid UTF-8: part 0 fails, the others must not load
        b"id,n\xc3\n1,a\n2,b\n3,c\n",
        b"id,\x00n\n1,a\n2,b\n3,c\n",  # binary
        codecs.BOM_UTF8 * 2
        + b"id,n\n1,a\n2,b\n3,c\n",  # the second BOM is the first name's; parts would drop it
        codecs.BOM_UTF8 + b"PK\x03\x04,n\n1,a\n2,b\n3,c\n",  # whole: a header; alone: a zip archive
        b",,\n1,a\n2,b\n3,c\n",  # blank to the readers: skipped, the next line is the header
        b";;\n1,a\n2,b\n3,c\n",  # blank with a delimiter the caller did not pass
        b'"",\t\n1,a\n2,b\n3,c\n',
        b"id,id\n1,a\n2,b\n3,c\n",  # refused by the readers: the same error, from one part
        b'id,"n"x\n1,a\n2,b\n3,c\n',  # broken quoting in the header
    ],
)
def test_a_header_the_parts_could_not_use_means_one_part(data: bytes) -> None:
    assert is_one_part(data)
    assert_reads_as_whole(data, "csv", 4, 3)


def test_a_unicode_header_is_rebuilt_exactly() -> None:
    data = codecs.BOM_UTF8 + 'ïd, nämé ,"名前, quoted"\r\n1,a,x\r\n2,b,y\r\n3,c,z\r\n'.encode()
    parts = plan_parts(reader(data), len(data), "csv", 4)
    assert len(parts) > 1
    assert {p.header for p in parts[1:]} == {'ïd, nämé ,"名前, quoted"'}
    assert_reads_as_whole(data, "csv", 4, 5)


def test_the_delimiter_decides_what_a_blank_header_is() -> None:
    data = b"a:b\n1:2\n3:4\n5:6\n"
    assert not is_one_part(data)
    assert plan_parts(reader(data), len(data), "csv", 4, delimiter=":") != [whole(len(data))]
    blank = b"::\n1:2\n3:4\n5:6\n"
    assert not is_one_part(blank)  # with "," it is a header named "::"
    assert plan_parts(reader(blank), len(blank), "csv", 4, delimiter=":") == [whole(len(blank))]
    with pytest.raises(ValueError, match="single character"):
        plan_parts(reader(data), len(data), "csv", 4, delimiter="::")


# 3. errors in a later part name the file's byte offsets


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"id,n\n1,a\n2,b\n3,\xffc\n4,d\n", "csv"),
        (codecs.BOM_UTF8 + b"id,n\n1,a\n2,b\n3,c\x00\n4,d\n", "csv"),
        (b"id,n\n1,a\n2,b\n3,c\n4,d\xe2\x82", "csv"),  # an incomplete character at the very end
        ("id,n\n1,é\n".encode() + b"2,b\n3,c\n4,d\xe2\n5,e\n", "csv"),  # a valid é before it
        (b'{"a": 1}\n{"a": 2}\n{"a": "\xc3("}\n', "jsonl"),
        (b'{"a": 1}\n{"a": 2}\n{"a": 3}\n\x00\n', "jsonl"),
    ],
)
@pytest.mark.parametrize("step", [None, 1, 2, 3])
def test_a_text_error_in_a_later_part_names_the_files_byte_offset(
    data: bytes, fmt: Format, step: int | None
) -> None:
    parts = plan_parts(reader(data), len(data), fmt, 9)
    assert len(parts) > 1
    _, error = read_whole(data, fmt)
    assert error is not None
    assert "byte offset" in error
    assert read_parts(parts, data, fmt, step)[1] == error
    assert first_failing_part(parts, data, fmt) > 0  # where the offsets used to be counted from the part


def test_the_offset_is_the_files_not_the_parts() -> None:
    data = b"id,n\n1,a\n2,b\n3,\xffc\n"
    part = plan_parts(reader(data), len(data), "csv", 13)[-1]
    assert part.start > 0
    stream = PartStream(part, io.BytesIO(data[part.start : part.end]))
    with pytest.raises(
        UnreadableFileError, match=r"^not valid UTF-8 at byte offset 15 \(line 4\): invalid start"
    ):
        list(iter_rows(stream, "csv", line_offset=stream.line_offset))


# 4. a JSON Lines part never starts with bytes the readers treat specially at a stream's start


@pytest.mark.parametrize(
    "line", [codecs.BOM_UTF8 + b'{"a": 3}', b"PK\x03\x04 not json", b"\x1f\x8b not json"]
)
def test_a_jsonl_cut_moves_past_a_line_the_readers_would_sniff(line: bytes) -> None:
    data = b'{"a": 1}\n{"a": 2}\n' + line + b'\n{"a": 4}\n{"a": 5}\n'
    parts = plan_parts(reader(data), len(data), "jsonl", 1)
    assert len(parts) > 1
    assert all(data[p.start : p.end][:1] == b"{" for p in parts)
    assert_reads_as_whole(data, "jsonl", 1, 4)


# 5. stray quotes


@pytest.mark.parametrize("target", range(1, 40))
def test_a_stray_quote_before_a_quoted_newline_means_one_part_where_a_cut_would_be_wrong(target: int) -> None:
    data = b'id,h,note\n1,27",x\n2,5,"multi\nline"\n3,5,x\n4,6,"two\nlines"\n5,7,y\n'
    rows, error = read_whole(data, "csv")
    assert error is None
    assert len(rows) == 5
    assert_reads_as_whole(data, "csv", target, 7)


def test_a_stray_quote_right_after_a_cut_means_one_part() -> None:
    data = b'id,h,note\n1,27",x\n2,5,"multi\nline"\n3,5,x\n'
    assert is_one_part(data, target=10)  # the first cut (after the header) is followed by 27"


def test_quotes_after_spaces_do_not_prevent_a_split() -> None:
    data = b'id,note\n1, "a"\n2, "b"\n3, "c"\n4, "d"\n'
    assert len(plan_parts(reader(data), len(data), "csv", 8)) > 1
    assert_reads_as_whole(data, "csv", 8, 3)


def test_a_stray_quote_the_planner_cannot_see_fails_loudly_in_one_part_at_least() -> None:
    # The documented limit: the quoted field across the cut starts and ends with a line break, so the
    # quotes next to the cut look right. The part before the cut ends inside a quoted field and fails.
    data = b'id,h,note\n1,27",x\n2,"\nmid\n",y\n3,28",z\n4,5,w\n5,6,v\n'
    whole_rows, whole_error = read_whole(data, "csv")
    assert whole_error is None
    assert len(whole_rows) == 5
    parts = plan_parts(reader(data), len(data), "csv", 20)
    assert len(parts) > 1
    stream = PartStream(parts[0], io.BytesIO(data[parts[0].start : parts[0].end]))
    with pytest.raises(UnreadableFileError, match="malformed CSV"):
        list(iter_rows(stream, "csv", line_offset=stream.line_offset))
    assert read_parts(parts, data, "csv")[1] is not None


@pytest.mark.parametrize("start", [b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"BZh91AY&SY", b"hello"])
def test_a_jsonl_file_that_does_not_start_like_json_is_one_part(start: bytes) -> None:
    data = start + b'\n{"a": 1}\n{"a": 2}\n{"a": 3}\n'
    assert is_one_part(data, "jsonl", target=1)
    assert_reads_as_whole(data, "jsonl", 1, 3)
    bom = codecs.BOM_UTF8 + b'{"a": 0}\n{"a": 1}\n{"a": 2}\n'
    assert not is_one_part(bom, "jsonl", target=1)
