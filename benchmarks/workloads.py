"""Generated users for the benchmarks: in-memory files, and a lazy stream of any size."""

from __future__ import annotations

import random
from collections.abc import Iterator

import orjson

CSV_HEADER = b"user_id,first_name,last_name,email,gender,age\n"
FIRST_NAMES = ("Ann", "Bob", "Chidi", "Dana", "Éva", "Femi", "Gita", "Hugo", "Ines", "Jun")
LAST_NAMES = ("Lee", "Okafor", "Smith", "García", "Novak", "Tanaka", "Byrne", "Silva")
GENDERS = ("Female", "Male", "Non-binary", "")


def users(count: int, *, seed: int = 42, bad_every: int = 0) -> list[dict[str, object]]:
    """``count`` realistic user records; with ``bad_every=n`` every n-th one has an invalid email."""
    rnd = random.Random(seed)
    records: list[dict[str, object]] = []
    for n in range(1, count + 1):
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        email = f"{first}.{last}{n}@Example.com"
        if bad_every and n % bad_every == 0:
            email = email.replace("@", " at ")
        records.append(
            {
                "user_id": f"u{n:08d}",
                "first_name": first,
                "last_name": last,
                "email": email,
                "gender": rnd.choice(GENDERS),
                "age": rnd.randint(0, 99),
            }
        )
    return records


def as_jsonl(records: list[dict[str, object]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def as_json_array(records: list[dict[str, object]]) -> bytes:
    return orjson.dumps(records)


def as_csv(records: list[dict[str, object]]) -> bytes:
    rows = (",".join(str(value) for value in record.values()) for record in records)
    return CSV_HEADER + "".join(f"{row}\n" for row in rows).encode()


class LazyCsv:
    """A users CSV of at least ``size`` bytes, generated as it is read: nothing of it is ever stored.

    Each block of rows is one pre-rendered template with the block number substituted (a single C-level
    ``replace``), so generating costs little beside the code being measured. User ids are distinct, and
    one row in 100 has a bad age so the rejection path runs too. ``read(n)`` like a botocore StreamingBody.
    """

    ROWS_PER_BLOCK = 2000
    _MARK = b"#######"

    def __init__(self, size: int) -> None:
        self.size = size
        self.bytes_read = 0
        self._template = "".join(
            f"u{self._MARK.decode()}{i:04d},{FIRST_NAMES[i % 10]}-Marie,{LAST_NAMES[i % 8]}-Whitfield,"
            f"{FIRST_NAMES[i % 10].lower()}.{self._MARK.decode()}{i:04d}@mail.example.com,"
            f"{GENDERS[i % 4]},{'x' if i % 100 == 99 else i % 100}\n"
            for i in range(self.ROWS_PER_BLOCK)
        ).encode()
        self._blocks = self._generate()
        self._buffer = b""

    def _generate(self) -> Iterator[bytes]:
        yield CSV_HEADER
        produced, number = len(CSV_HEADER), 0
        while produced < self.size:
            block = self._template.replace(self._MARK, b"%07d" % number)
            number += 1
            produced += len(block)
            yield block

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            block = next(self._blocks, b"")
            if not block:
                break
            self._buffer += block
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self.bytes_read += len(data)
        return data
