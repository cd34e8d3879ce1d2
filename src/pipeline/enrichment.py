"""Declarative enrichment: derived fields and lookups in versioned reference data, added to valid records.

A dataset declares an :class:`Enrichment` in the registry (:mod:`pipeline.datasets`): a name, a version
(bump it whenever a step's logic changes) and steps, applied in order to each valid record before it is
written:

- :class:`Derived`: an attribute computed from another by a pure function of its text (``email_domain``
  from ``email``, ``age_band`` from ``age``);
- :class:`Lookup`: an attribute looked up in a reference table kept in the data lake bucket at
  ``reference/<table>/<version>/<table>.csv`` (shipped in the repository under ``reference/``, uploaded by
  Terraform). Which version is used is configuration: ``PIPELINE_REFERENCE_VERSIONS`` (``table=v2,...``, set
  by Terraform's ``reference_versions``), else the version the lookup declares. A version, once published,
  is never edited: a change is a new version.

Enriched attributes are written into the table item (plain strings) beside the schema's fields, with the
lineage attribute ``enricher_version`` (e.g. ``users-enricher/1+email_providers/v1``). Nothing depends on the
clock or on chance, and a table's version names its content: the same record and the same enricher version
give byte-identical items. A reference table that is missing, unreadable or empty raises
:class:`ReferenceDataError`: the file is not loaded (its manifest says why), never enriched from an empty
lookup.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Item = dict[str, dict[str, str]]
REFERENCE_PREFIX = "reference/"
ENRICHER_VERSION_ATTRIBUTE = "enricher_version"
VERSION_PATTERN = re.compile(r"^v[1-9][0-9]*$")
MAX_REFERENCE_BYTES = 16 << 20  # a lookup table is held in memory by every function that uses it


class ReferenceDataError(RuntimeError):
    """A reference table cannot be used: the file is not loaded, its manifest says why."""


def reference_key(table: str, version: str) -> str:
    return f"{REFERENCE_PREFIX}{table}/{version}/{table}.csv"


# --- derivations: pure functions of an attribute's text ------------------------------------------------


def email_domain(email: str) -> str | None:
    """The domain of an address, lower-cased (Unicode NFC, so one domain has one spelling); None without @."""
    _, at, domain = email.rpartition("@")
    domain = domain.strip().rstrip(".")
    if not at or not domain:
        return None
    return unicodedata.normalize("NFC", domain).lower()


AGE_BANDS: tuple[tuple[int, str], ...] = (
    (17, "0-17"),
    (24, "18-24"),
    (34, "25-34"),
    (44, "35-44"),
    (54, "45-54"),
    (64, "55-64"),
)
"""(highest age, label) in order; older is ``65+``."""


def age_band(age: str) -> str | None:
    """``"18-24"``, ``"25-34"``, ... ``"65+"`` for a whole number of years; None for anything else."""
    try:
        years = int(age)
    except ValueError:
        return None
    if years < 0:
        return None
    for highest, label in AGE_BANDS:
        if years <= highest:
            return label
    return "65+"


# --- the declaration -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Derived:
    """``name`` = ``function(text of source)``; left out when the source has no value or gives None."""

    name: str
    source: str
    function: Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Lookup:
    """``name`` = the ``value_column`` of the reference row whose ``key_column`` is the source's value.

    ``parent_domains``: a dotted key also matches its parents, nearest first (``cs.ox.ac.uk`` is found as
    ``ox.ac.uk``, then ``ac.uk``), so a table can name a whole suffix. A key found nowhere gets ``default``
    (None: the attribute is left out). Keys are compared lower-cased (Unicode NFC).
    """

    name: str
    source: str
    table: str
    key_column: str
    value_column: str
    version: str = "v1"
    parent_domains: bool = False
    default: str | None = None

    def __post_init__(self) -> None:
        if not VERSION_PATTERN.match(self.version):
            raise ValueError(f"lookup {self.name!r}: version must look like v1, v2..., not {self.version!r}")


Step = Derived | Lookup


@dataclass(frozen=True, slots=True)
class Enrichment:
    """A dataset's enrichment: ``name/version``, and the steps applied in order (a step may use an earlier
    step's output as its source)."""

    name: str
    version: int
    steps: tuple[Step, ...]

    @property
    def outputs(self) -> tuple[str, ...]:
        return (*(step.name for step in self.steps), ENRICHER_VERSION_ATTRIBUTE)

    def versions(self, configured: Mapping[str, str]) -> dict[str, str]:
        """Reference table -> the version to use: the configured one, else the declared one."""
        return {
            step.table: configured.get(step.table, step.version)
            for step in self.steps
            if isinstance(step, Lookup)
        }


# --- at run time ---------------------------------------------------------------------------------------


def _key(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip()).lower()


class ReferenceStore:
    """Reference tables read from the data lake bucket, each (table, version) once per process."""

    def __init__(self, s3: S3Client, bucket: str | None) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._tables: dict[tuple[str, str, str, str], dict[str, str]] = {}

    def table(self, lookup: Lookup, version: str) -> dict[str, str]:
        cache_key = (lookup.table, version, lookup.key_column, lookup.value_column)
        table = self._tables.get(cache_key)
        if table is None:
            # Only a table that loaded is kept: once the data is fixed, the next file reads it again.
            table = self._tables[cache_key] = self._load(lookup, version)
        return table

    def _load(self, lookup: Lookup, version: str) -> dict[str, str]:
        if not VERSION_PATTERN.match(version):
            raise ReferenceDataError(
                f"reference table {lookup.table}: configured version {version!r} is not v1, v2..."
            )
        key = reference_key(lookup.table, version)
        where = f"reference table {lookup.table} {version} (s3://{self._bucket}/{key})"
        if self._bucket is None:
            raise ReferenceDataError(f"{where}: PIPELINE_DATALAKE_BUCKET is not set, so it cannot be read")
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
            if response.get("ContentLength", 0) > MAX_REFERENCE_BYTES:
                raise ReferenceDataError(f"{where}: bigger than {MAX_REFERENCE_BYTES} bytes")
            body = response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ReferenceDataError(f"{where} cannot be read: {code or exc}") from None
        except BotoCoreError as exc:
            raise ReferenceDataError(f"{where} cannot be read: {exc}") from None
        return parse_reference(body, lookup, where)


def parse_reference(body: bytes, lookup: Lookup, where: str) -> dict[str, str]:
    """A reference CSV (UTF-8, a BOM allowed) as key -> value; refuses anything that would look up wrongly."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReferenceDataError(f"{where} is not UTF-8 text: {exc.reason}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = {(name or "").strip(): name for name in reader.fieldnames or ()}
    missing = [c for c in (lookup.key_column, lookup.value_column) if c not in columns]
    if missing:
        raise ReferenceDataError(f"{where} lacks the column(s) {', '.join(missing)}")
    key_column, value_column = columns[lookup.key_column], columns[lookup.value_column]
    table: dict[str, str] = {}
    try:
        for row in reader:
            key, value = _key(row[key_column] or ""), (row[value_column] or "").strip()
            if not key:
                continue
            if not value:
                raise ReferenceDataError(f"{where}: line {reader.line_num}: {key!r} has no {value_column}")
            if table.setdefault(key, value) != value:
                raise ReferenceDataError(f"{where}: {key!r} is given two values")
    except csv.Error as exc:
        raise ReferenceDataError(f"{where}: malformed CSV: {exc}") from None
    if not table:
        raise ReferenceDataError(f"{where} has no rows")
    return table


def _lookup_in(table: Mapping[str, str], lookup: Lookup) -> Callable[[str], str | None]:
    def find(text: str) -> str | None:
        key = _key(text)
        if key in table:
            return table[key]
        if lookup.parent_domains:
            labels = key.split(".")
            for start in range(1, len(labels)):
                parent = ".".join(labels[start:])
                if parent in table:
                    return table[parent]
        return lookup.default

    return find


@dataclass(frozen=True, slots=True)
class Enricher:
    """An :class:`Enrichment` with its reference tables loaded: adds attributes to items in place."""

    version: str
    steps: tuple[tuple[str, str, Callable[[str], str | None]], ...]  # (name, source, function)

    def apply(self, items: list[Item]) -> None:
        # One attribute value shared by every item, as validation shares the lineage ones: read-only.
        version = {"S": self.version}
        for item in items:
            for name, source, function in self.steps:
                value = item.get(source)
                if value is None:
                    continue
                derived = function(value.get("S") or value.get("N") or "")
                if derived is not None and derived != "":
                    item[name] = {"S": derived}
            item[ENRICHER_VERSION_ATTRIBUTE] = version


def build_enricher(enrichment: Enrichment, store: ReferenceStore, configured: Mapping[str, str]) -> Enricher:
    """Load the reference tables ``enrichment`` needs (at the configured versions) and bind its steps."""
    versions = enrichment.versions(configured)
    steps: list[tuple[str, str, Callable[[str], str | None]]] = []
    for step in enrichment.steps:
        if isinstance(step, Derived):
            steps.append((step.name, step.source, step.function))
        else:
            table = store.table(step, versions[step.table])
            steps.append((step.name, step.source, _lookup_in(table, step)))
    label = "+".join(
        [f"{enrichment.name}/{enrichment.version}", *(f"{t}/{v}" for t, v in sorted(versions.items()))]
    )
    return Enricher(version=label, steps=tuple(steps))


class Enrichers:
    """One enricher per dataset, built on first use and kept for the process (a cold start's worth)."""

    def __init__(self, store: ReferenceStore, configured: Mapping[str, str]) -> None:
        self._store = store
        self._configured = dict(configured)
        self._built: dict[str, Enricher] = {}

    def get(self, dataset: Any) -> Enricher | None:
        """The enricher of a :class:`~pipeline.datasets.Dataset`, None if it declares no enrichment; raises
        :class:`ReferenceDataError` when its reference data cannot be used."""
        enrichment: Enrichment | None = dataset.enrichment
        if enrichment is None:
            return None
        enricher = self._built.get(dataset.name)
        if enricher is None:
            enricher = self._built[dataset.name] = build_enricher(enrichment, self._store, self._configured)
        return enricher


def parse_versions(raw: str) -> dict[str, str]:
    """``"email_providers=v2,plans=v1"`` -> a mapping; raises ValueError naming the bad entry."""
    versions: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        table, equals, version = (text.strip() for text in entry.partition("="))
        if not equals or not table or not VERSION_PATTERN.match(version):
            raise ValueError(f"{entry!r} is not table=vN")
        versions[table] = version
    return versions
