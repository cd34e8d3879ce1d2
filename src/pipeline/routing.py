"""Which dataset an object key belongs to.

Datasets are declared in :mod:`pipeline.datasets`. A key is matched on its file name (case-insensitive
glob, a trailing ``.gz`` ignored) and, optionally, on a key prefix. The first dataset that matches wins; a
key that matches none goes to the data lake's ``unclassified`` area, which is never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pydantic import BaseModel

Format = Literal["csv", "jsonl", "json"]
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


def route(key: str, datasets: Iterable[Dataset] | None = None) -> Dataset:
    """The dataset ``key`` belongs to, or :data:`UNCLASSIFIED`."""
    if datasets is None:
        from pipeline.datasets import DATASETS  # noqa: PLC0415 - datasets imports this module

        datasets = DATASETS
    for dataset in datasets:
        if dataset.matches(key):
            return dataset
    return UNCLASSIFIED
