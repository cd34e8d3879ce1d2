"""The dataset registry and key routing: edit the registry below to teach the pipeline your own files.

Each entry says which keys belong to the dataset (file-name globs, a trailing ``.gz`` ignored, optional key
prefix), how to read them and, when it has a schema, what its validated records become: rows of the curated
zone (Parquet, :mod:`pipeline.curated`; ``columns`` declares their Arrow types, in order) and, when it has a
table, items of that table (the environment variable naming the table is set by Terraform on the database and
part loaders). The first dataset that matches a key wins; a key that matches none goes to the data lake's
``unclassified`` area, which is never an error. Every file, matched or not, is copied to the lake.

``columns`` is the one declaration of a dataset's curated columns: each is a field of the validated record
(or of the item, for columns a later step adds to it) and an Arrow type name from
:data:`pipeline.curated.ARROW_TYPES`. The writer builds every column from this list, and appends the same
lineage columns to every dataset, so a column is added here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pipeline.readers import Format
from pipeline.schemas.events import EventRecord
from pipeline.schemas.users import UserRecord

if TYPE_CHECKING:
    from pydantic import BaseModel

UNCLASSIFIED_NAME = "unclassified"

Column = tuple[str, str]
"""A curated column: its name (a field of the validated record) and an Arrow type name."""


@dataclass(frozen=True, slots=True)
class Dataset:
    """A kind of file: where its keys are, how it is read, and where its records go."""

    name: str
    patterns: tuple[str, ...] = ()
    prefix: str = ""
    # With a schema, records are validated and written to the curated zone as ``columns``, and loaded into
    # the table that ``table_env`` names when there is one. ``key_field`` is the record's key: the table's
    # partition key, and what the curated zone's "later event wins" view partitions by.
    schema: type[BaseModel] | None = None
    key_field: str | None = None
    table_env: str | None = None
    columns: tuple[Column, ...] = ()
    format: Format | None = None
    delimiter: str = ","

    def __post_init__(self) -> None:
        if self.schema is None:
            if self.key_field or self.table_env or self.columns:
                raise ValueError(f"dataset {self.name!r}: a key_field, table_env or columns needs a schema")
            return
        if self.key_field is None or not self.columns:
            raise ValueError(f"dataset {self.name!r}: a schema needs a key_field and curated columns")
        names = [name for name, _ in self.columns]
        if self.key_field not in names or len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name!r}: columns must name key_field once, and no column twice")

    @property
    def loads_database(self) -> bool:
        """Whether the database loader takes the dataset's files on (validates them): it has a schema."""
        return self.schema is not None

    @property
    def has_table(self) -> bool:
        return self.table_env is not None

    def matches(self, key: str) -> bool:
        if not key.startswith(self.prefix):
            return False
        name = key.rsplit("/", 1)[-1].lower()
        if name.endswith(".gz"):
            name = name[:-3]
        return any(fnmatchcase(name, pattern.lower()) for pattern in self.patterns)


UNCLASSIFIED = Dataset(UNCLASSIFIED_NAME)


# --- the registry ------------------------------------------------------------------------------------

USERS = Dataset(
    name="users",
    patterns=("users*.csv", "users*.jsonl", "users*.ndjson", "users*.json"),
    schema=UserRecord,
    key_field="user_id",
    table_env="PIPELINE_USERS_TABLE",
    columns=(
        ("user_id", "string"),
        ("first_name", "string"),
        ("last_name", "string"),
        ("email", "string"),
        ("gender", "string"),
        ("age", "int32"),
    ),
)

# Click-stream events: validated, kept in the lake and the curated zone; no table.
EVENTS = Dataset(
    name="events",
    patterns=("events*.jsonl", "events*.ndjson", "events*.json"),
    schema=EventRecord,
    key_field="event_id",
    columns=(
        ("event_id", "string"),
        ("user_id", "string"),
        ("event_type", "string"),
        ("occurred_at", "timestamp_ms_utc"),
        ("properties", "string"),  # the JSON object as compact JSON text
    ),
)

DATASETS: tuple[Dataset, ...] = (USERS, EVENTS)


def route(key: str, datasets: Iterable[Dataset] = DATASETS) -> Dataset:
    """The dataset ``key`` belongs to (the first that matches), or :data:`UNCLASSIFIED`."""
    for dataset in datasets:
        if dataset.matches(key):
            return dataset
    return UNCLASSIFIED
