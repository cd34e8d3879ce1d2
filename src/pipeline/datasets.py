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

A dataset with a schema may also declare:

- ``contract=Contract(unknown_columns=...)`` (:mod:`pipeline.contracts`): what a column (or JSON key) the
  schema does not know does to the file. ``"reject"``, the default and what ``users`` uses: a CSV file with
  one is quarantined, a JSON record with one is rejected. ``"ignore"``: dropped. ``"keep"``: carried in
  ``ValidatedBatch.extras`` for the data lake, never into the table item. Names are matched ignoring case,
  surrounding spaces and a BOM under every policy, and the manifest lists each decision
  (``contract_decisions``, e.g. ``"ignored columns: signup_source"``).
- ``enrichment=Enrichment(name, version, steps)`` (:mod:`pipeline.enrichment`): attributes added to each valid
  record before it is written: ``Derived(name, source, function)`` for a pure function of one attribute,
  ``Lookup(name, source, table, key_column, value_column, version="v1")`` for a reference table kept in the
  lake at ``reference/<table>/<version>/<table>.csv`` (put the CSV under the repository's ``reference/``:
  Terraform uploads it; ``reference_versions`` picks the version). Bump ``version`` whenever a step changes
  what it computes: ``enricher_version`` (``<name>/<version>+<table>/<version>...``) is in every item.

For example, a partners file whose exports add columns of their own, kept for the lake::

    PARTNERS = Dataset(
        name="partners",
        patterns=("partners*.csv",),
        schema=PartnerRecord,
        key_field="partner_id",
        table_env="PIPELINE_PARTNERS_TABLE",
        columns=(("partner_id", "string"), ("email", "string")),
        contract=Contract(unknown_columns="keep"),
        enrichment=Enrichment(
            "partners-enricher", 1, (Derived("email_domain", source="email", function=email_domain),)
        ),
    )
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pipeline.contracts import Contract
from pipeline.enrichment import Derived, Enrichment, Lookup, age_band, email_domain
from pipeline.objects import LINEAGE_FIELDS
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
    # What to do with columns the schema does not know (reject | ignore | keep): pipeline.contracts.
    contract: Contract = field(default_factory=Contract)
    # Derived fields and reference lookups added to valid records before they are written (enrichment).
    enrichment: Enrichment | None = None

    def __post_init__(self) -> None:
        if self.enrichment is not None:
            _check_enrichment(self)
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


def _check_enrichment(dataset: Dataset) -> None:
    """Refuse, at import, an enrichment that would overwrite a field or read an attribute nobody writes."""
    assert dataset.enrichment is not None
    if dataset.schema is None:
        raise ValueError(f"dataset {dataset.name!r}: enrichment needs a schema (it enriches valid records)")
    available = set(dataset.schema.model_fields)
    taken = available | set(LINEAGE_FIELDS) | {"line"}
    for step in dataset.enrichment.steps:
        if step.source not in available:
            raise ValueError(
                f"dataset {dataset.name!r}: enrichment {step.name!r} reads unknown {step.source!r}"
            )
        if step.name in taken:
            raise ValueError(f"dataset {dataset.name!r}: enrichment {step.name!r} would overwrite a field")
        available.add(step.name)
        taken.add(step.name)


UNCLASSIFIED = Dataset(UNCLASSIFIED_NAME)


# --- the registry ------------------------------------------------------------------------------------

# users-enricher/1: bump the version whenever a step below changes what it computes.
USERS_ENRICHMENT = Enrichment(
    name="users-enricher",
    version=1,
    steps=(
        Derived("email_domain", source="email", function=email_domain),
        Derived("age_band", source="age", function=age_band),
        # reference/email_providers/v1/email_providers.csv lists free-mail and education domains (a suffix
        # such as ac.uk names all below it); any other domain is taken to be an organisation's own.
        Lookup(
            "email_provider",
            source="email_domain",
            table="email_providers",
            key_column="domain",
            value_column="kind",
            version="v1",
            parent_domains=True,
            default="corporate",
        ),
    ),
)

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
    contract=Contract(unknown_columns="reject"),  # the default, said out loud: today's strictness
    enrichment=USERS_ENRICHMENT,
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
