"""Splitting files into parts: a cut never falls inside a record, and the parts' rows are the file's rows."""

from __future__ import annotations

import codecs
import io
import itertools
import random

import pytest

from pipeline.readers import Format, UnreadableFileError, iter_rows
from pipeline.splits import Part, PartStream, plan_parts


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
