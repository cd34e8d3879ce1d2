"""The dataset registry and key routing: edit the registry below to teach the pipeline your own files.

Each entry says which keys belong to the dataset (file-name globs, a trailing ``.gz`` ignored, optional key
prefix), how to read them and, when it has a schema, which table its validated records are loaded into (the
environment variable naming the table is set by Terraform on the database loader). The first dataset that
matches a key wins; a key that matches none goes to the data lake's ``unclassified`` area, which is never an
error. Every file, matched or not, is copied to the lake.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pipeline.contracts import Contract
from pipeline.readers import Format
from pipeline.schemas.users import UserRecord

if TYPE_CHECKING:
    from pydantic import BaseModel

UNCLASSIFIED_NAME = "unclassified"


@dataclass(frozen=True, slots=True)
class Dataset:
    """A kind of file: where its keys are, how it is read, and where its records go."""

    name: str
    patterns: tuple[str, ...] = ()
    prefix: str = ""
    # With a schema, records are validated and loaded into the table that ``table_env`` names.
    schema: type[BaseModel] | None = None
    key_field: str | None = None
    table_env: str | None = None
    format: Format | None = None
    delimiter: str = ","
    # What to do with columns the schema does not know (reject | ignore | keep): pipeline.contracts.
    contract: Contract = field(default_factory=Contract)

    def __post_init__(self) -> None:
        if self.schema is not None and (self.key_field is None or self.table_env is None):
            raise ValueError(f"dataset {self.name!r}: a schema needs a key_field and a table_env")

    @property
    def loads_database(self) -> bool:
        return self.schema is not None

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
)

# Lake-only: kept in the data lake, partitioned, but not loaded into a table.
EVENTS = Dataset(name="events", patterns=("events*.jsonl", "events*.ndjson", "events*.json"))

DATASETS: tuple[Dataset, ...] = (USERS, EVENTS)


def route(key: str, datasets: Iterable[Dataset] = DATASETS) -> Dataset:
    """The dataset ``key`` belongs to (the first that matches), or :data:`UNCLASSIFIED`."""
    for dataset in datasets:
        if dataset.matches(key):
            return dataset
    return UNCLASSIFIED
