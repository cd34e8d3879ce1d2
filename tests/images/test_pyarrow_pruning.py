"""The image drops parts of pyarrow (images/Dockerfile): the curated writer must work without them.

Each dropped extension module is made unimportable in a fresh interpreter, then the writer writes and reads
back a Parquet object. A pyarrow upgrade that starts importing one of them unconditionally fails here, before
an image fails in Lambda. (The shared libraries dropped with them are loaded only by those modules.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DROPPED_MODULES = ("pyarrow._flight", "pyarrow._s3fs", "pyarrow._pyarrow_cpp_tests", "pyarrow.tests")

PROBE = """
import importlib.abc, io, sys
from datetime import UTC, datetime

DROPPED = {dropped!r}

class Dropped(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in DROPPED or name.startswith(tuple(d + "." for d in DROPPED)):
            raise ImportError(f"{{name}} is not in the image")
        return None

sys.meta_path.insert(0, Dropped())
import pyarrow.parquet as pq
from pipeline.curated import CuratedWriter
from pipeline.datasets import USERS
from pipeline.objects import ObjectRef

ref = ObjectRef(bucket="b", key="users.csv", event_time=datetime(2026, 1, 1, tzinfo=UTC))
writer = CuratedWriter(USERS, ref)
item = {{"user_id": {{"S": "u1"}}, "email": {{"S": "a@example.com"}}}}
item.update({{"age": {{"N": "7"}}, "line": {{"N": "2"}}}})
writer.add([item])

class Sink:
    def upload_fileobj(self, body, bucket, key, **_):
        rows = pq.read_table(io.BytesIO(body.read())).to_pylist()
        assert [(r["user_id"], r["age"]) for r in rows] == [("u1", 7)], rows

assert writer.upload(Sink(), "lake")
assert not [name for name in sys.modules if name in DROPPED], "a dropped module was imported"
print("ok")
"""


def test_the_curated_writer_works_without_the_modules_the_image_drops() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(dropped=DROPPED_MODULES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_dockerfile_drops_exactly_those_modules() -> None:
    dockerfile = (ROOT / "images" / "Dockerfile").read_text()
    for pattern in ("_flight.*.so", "_s3fs.*.so", "_pyarrow_cpp_tests.*.so", "rm -rf tests include"):
        assert pattern in dockerfile, pattern
