"""Validate a file's records in batches and turn the good ones into DynamoDB items with lineage.

Per record, a problem becomes a :class:`Rejection` (line number, reasons naming the field, the original
record) and never affects its neighbours. A problem with the file as a whole raises
:class:`~pipeline.readers.UnreadableFileError`, possibly after some batches were already yielded (a
truncated gzip is only noticed at its end): a caller that must not load part of a bad file should hold its
writes until the iteration ends, otherwise rely on writes being idempotent and quarantine the file.

Speed (see benchmarks/): a whole batch is validated in one compiled call, whose elements come back as
models, or unchanged when invalid (a left-to-right union of the schema and ``Any``); only those are
validated again, one by one, for their errors, so one bad record costs little and hides no other. Items
are built as low-level attribute values directly, not through boto3's TypeSerializer.
"""

from __future__ import annotations

import functools
import gc
import types
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

from pipeline.contracts import Contract, ContractReport, normalise_name, trimmed_name
from pipeline.objects import LINEAGE_FIELDS, ObjectRef
from pipeline.readers import Format, MalformedRow, Readable, Row, UnreadableFileError, iter_rows

Item = dict[str, dict[str, str]]
"""A DynamoDB item in the low-level attribute-value form BatchWriteItem takes."""

LINEAGE_ATTRIBUTES = (*LINEAGE_FIELDS, "line")
"""Attributes every item carries besides its schema's fields: the file version's lineage and the line."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not loaded: its line, why (``"field: reason"``), and the record as read."""

    line: int
    reasons: list[str]
    record: object
    """The record as read, JSON-serialisable: a CSV row (dict or list), a JSON Lines text, a JSON value."""


@dataclass(slots=True)
class ValidatedBatch:
    """One batch of records: ``records_read == len(items) + len(rejections)``; both lists in line order."""

    items: list[Item]
    rejections: list[Rejection]
    records_read: int
    extras: list[dict[str, str]] = field(default_factory=list)
    """Under a ``keep`` contract, parallel to ``items``: each record's unknown columns (trimmed name -> text;
    a JSON value that is not a string as its JSON text), for the data lake, never in the item. Otherwise
    empty."""


Attribute = tuple[str, str, Callable[[Any], str] | None]
"""A field as an item attribute: its name, DynamoDB type tag (S or N), and how its value becomes text (None:
it is text already)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """What validation needs to know about a schema, worked out once per schema."""

    schema: type[BaseModel]
    adapter: TypeAdapter[list[Any]]  # list[schema | the input as given, when it is not valid]
    attributes: tuple[Attribute, ...]  # in schema order
    names: dict[str, str]  # accepted input key (field name or alias) -> field name
    spellings: dict[str, tuple[str, ...]]  # field name -> its accepted input keys
    required: tuple[str, ...]
    normal: dict[str, str]  # normalised input key (contracts.normalise_name) -> an accepted input key


def iter_validated_batches(
    stream: Readable,
    *,
    schema: type[BaseModel],
    ref: ObjectRef,
    fmt: Format,
    gzipped: bool = False,
    delimiter: str = ",",
    batch_size: int | Callable[[], int] = 1000,
    line_offset: int = 0,
    skip_records: int = 0,
    contract: Contract | None = None,
    report: ContractReport | None = None,
) -> Iterator[ValidatedBatch]:
    """Read, validate and serialise ``stream`` in batches of ``batch_size`` records (not lines).

    ``skip_records`` records are read (and numbered) but not validated: a load that resumes after them.
    ``contract`` (default: reject unknown columns) says what happens to columns the schema does not know
    (:mod:`pipeline.contracts`); what it decided is noted in ``report``.

    Yields nothing for a file without records. Each item holds the schema's fields that have a value
    (None and "" are left out: DynamoDB refuses empty strings in key attributes) plus the lineage
    attributes ``source_bucket``, ``source_key``, ``source_version``, ``line``, ``source_event_time``,
    ``source_order`` and, when ``ref`` knows who landed the file, ``uploaded_by``. Items depend only on
    the file and ``ref``: a replay gives byte-identical items.
    ``batch_size`` may be a function, asked before each batch (a load paced by its time budget).
    """
    if isinstance(batch_size, int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        next_size: Callable[[], int] = functools.partial(int, batch_size)
    else:
        next_size = batch_size
    plan = _plan(schema)
    conformer = _Conformer(plan, contract or Contract(), report or ContractReport(), fmt)
    on_header = conformer.on_header if fmt == "csv" else None
    rows = iter_rows(
        stream, fmt, gzipped=gzipped, delimiter=delimiter, on_header=on_header, line_offset=line_offset
    )
    if skip_records:
        rows = islice(rows, skip_records, None)
    prepare = functools.partial(_prepare_csv, conformer) if fmt == "csv" else _PREPARE[fmt]
    # Built once per file and shared by its items (one dict per attribute, not per item, saves the
    # allocator and the garbage collector a lot of work): treat items as read-only.
    lineage: Item = {name: {"S": value} for name, value in ref.lineage().items()}
    while True:
        with _gc_paused():
            batch = list(islice(rows, max(1, next_size())))
            if not batch:
                return
            validated = _validate(plan, lineage, prepare(batch), conformer)
        yield validated  # outside the pause: the caller's code runs with the collector on


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one batch is built.

    A batch allocates about ten containers per record and no reference cycles (refcounting frees it all),
    yet CPython's generational collector would run hundreds of young collections per batch, each
    re-scanning the batch under construction: about 40% of the time (see benchmarks/). Paused per batch,
    never across a ``yield``, so cyclic garbage from elsewhere waits a few milliseconds at most.
    """
    if not gc.isenabled():  # someone else paused it: leave their state alone
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(slots=True)
class _Prepared:
    """A batch turned into validator inputs; ``lines``, ``inputs`` and ``raws`` are parallel lists."""

    lines: list[int]
    inputs: list[object]
    raws: list[Row]
    rejected: list[Rejection]

    @classmethod
    def one_by_one(cls, batch: list[tuple[int, Row]], convert: Callable[[int, Row], object]) -> _Prepared:
        """The slow path, for a batch with a bad row: ``convert`` returns an input or a Rejection."""
        prepared = cls([], [], [], [])
        for line, row in batch:
            converted = convert(line, row)
            if isinstance(converted, Rejection):
                prepared.rejected.append(converted)
            else:
                prepared.lines.append(line)
                prepared.inputs.append(converted)
                prepared.raws.append(row)
        return prepared


# --- per-format preparation: each has a fast path for a batch without a malformed row ------------------


def _prepare_csv(conformer: _Conformer, batch: list[tuple[int, Row]]) -> _Prepared:
    raws = [row for _, row in batch]
    if any(type(row) is MalformedRow for row in raws):
        return _Prepared.one_by_one(batch, functools.partial(_csv_input, conformer))
    rename = conformer.rename
    inputs: list[object]
    if rename is None:
        # An empty cell is "no value": CSV cannot tell empty from missing.
        inputs = [{key: value for key, value in row.items() if value} for row in raws]  # type: ignore[attr-defined]
    else:
        # Columns matched by a variant of their name get the schema's spelling; unknown ones are left out.
        inputs = [{rename[k]: v for k, v in row.items() if v and k in rename} for row in raws]  # type: ignore[attr-defined]
    return _Prepared([line for line, _ in batch], inputs, raws, [])


def _csv_input(conformer: _Conformer, line: int, row: Row) -> object:
    if isinstance(row, MalformedRow):
        return Rejection(line, [row.reason], row.raw)
    rename = conformer.rename
    if rename is None:
        return {key: value for key, value in row.items() if value}  # type: ignore[attr-defined]
    return {rename[k]: v for k, v in row.items() if v and k in rename}  # type: ignore[attr-defined]


def _prepare_jsonl(batch: list[tuple[int, Row]]) -> _Prepared:
    raws = [row for _, row in batch]
    try:
        inputs: list[object] = [orjson.loads(row) for row in raws]  # type: ignore[arg-type]
    except orjson.JSONDecodeError:
        return _Prepared.one_by_one(batch, _jsonl_input)
    return _Prepared([line for line, _ in batch], inputs, raws, [])


def _jsonl_input(line: int, row: Row) -> object:
    try:
        return orjson.loads(row)  # type: ignore[arg-type]
    except orjson.JSONDecodeError as exc:
        return Rejection(line, [f"invalid JSON: {exc}"], _jsonl_text(row))


def _prepare_json(batch: list[tuple[int, Row]]) -> _Prepared:
    raws: list[Row] = [row for _, row in batch]
    return _Prepared([line for line, _ in batch], raws, raws, [])  # elements are inputs as they are


_PREPARE: dict[Format, Callable[[list[tuple[int, Row]]], _Prepared]] = {
    "jsonl": _prepare_jsonl,
    "json": _prepare_json,
}  # csv: _prepare_csv, bound to the file's header


def _jsonl_text(row: Row) -> object:
    # The reader checked the file is UTF-8, so this decode cannot fail.
    return row.decode("utf-8").rstrip("\r") if isinstance(row, bytes) else row


# --- validation and serialisation ----------------------------------------------------------------------


def _validate(plan: _Plan, lineage: Item, batch: _Prepared, conformer: _Conformer) -> ValidatedBatch:
    # One compiled pass over the batch: each element comes back as a model, or as the input itself
    # when it is invalid. Only those few are validated again, alone, to learn why.
    outcomes = plan.adapter.validate_python(batch.inputs)
    schema, attributes = plan.schema, plan.attributes
    rejected = batch.rejected
    items: list[Item] = []
    keeps = conformer.keeps
    extras: list[dict[str, str]] = []
    for line, outcome, as_read, raw in zip(batch.lines, outcomes, batch.inputs, batch.raws, strict=True):
        model, given = outcome, as_read
        extra: dict[str, str] | None = None
        if type(model) is not schema:
            if conformer.conforms_keys and type(given) is dict:
                # JSON keys: off the fast path, so a file spelling them as the schema does costs nothing.
                given, extra, twice = conformer.conform(given)
                if twice is not None:
                    rejected.append(Rejection(line, [twice], _jsonl_text(raw)))
                    continue
            try:
                model = schema.model_validate(given)
            except ValidationError as exc:
                reasons = _reasons(plan, exc, given, conformer.spellings_in(raw))
                rejected.append(Rejection(line, reasons, _jsonl_text(raw)))
                continue
        # The hot loop: plain dict building; the plan already knows which fields are numbers.
        values = model.__dict__
        item: Item = {}
        for name, tag, convert in attributes:
            value = values[name]
            if value is None or value == "":
                continue
            item[name] = {tag: value if convert is None else convert(value)}
        item.update(lineage)
        item["line"] = {"N": str(line)}
        items.append(item)
        if keeps:
            extras.append(extra if extra is not None else conformer.csv_extras(raw))
    if rejected:
        rejected.sort(key=lambda rejection: rejection.line)
    return ValidatedBatch(
        items=items, rejections=rejected, records_read=len(items) + len(rejected), extras=extras
    )


_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}


def _reasons(plan: _Plan, exc: ValidationError, prepared: object, given: Container[str]) -> list[str]:
    """Readable reasons, one per problem, each starting with the field it is about."""
    reasons: list[str] = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = error["loc"]
        if not loc:
            kind = _JSON_TYPE_NAMES.get(type(prepared), "a number")
            reason = f"record: must be a JSON object, not {kind}"
        else:
            key = str(loc[0])
            name = plan.names.get(key, key)
            if error["type"] == "missing":
                empty = any(spelling in given for spelling in plan.spellings[name])
                reason = f"{name}: required field is {'empty' if empty else 'missing'}"
            elif error["type"] == "extra_forbidden":
                if key in plan.names:
                    given = " and ".join(
                        repr(s) for s in plan.spellings[name] if isinstance(prepared, dict) and s in prepared
                    )
                    reason = f"{name}: given more than once, as {given}"
                else:
                    reason = f"{key}: unknown field"
            else:
                reason = f"{name}: {error['msg']}"
        if reason not in reasons:
            reasons.append(reason)
    return reasons


class _Conformer:
    """One file's contract at work: maps the CSV header (once) or each JSON record's keys onto the schema's
    spellings, and drops, keeps or refuses unknown columns as the contract says, noting it in the report."""

    def __init__(self, plan: _Plan, contract: Contract, report: ContractReport, fmt: Format) -> None:
        self.plan = plan
        self.policy = contract.unknown_columns
        self.keeps = self.policy == "keep"
        self.report = report
        self.conforms_keys = fmt != "csv"
        # CSV: header name -> accepted spelling; None while the header is used as it is (the fast path).
        self.rename: dict[str, str] | None = None
        self.kept: list[tuple[str, str]] = []  # CSV: (header name, trimmed name) of the kept columns

    def spelling(self, key: str) -> str | None:
        """The accepted input key ``key`` stands for, or None if the schema does not know it."""
        if key in self.plan.names:
            return key
        return self.plan.normal.get(normalise_name(key))

    def on_header(self, header: Sequence[str]) -> None:
        """Refuse a CSV header that cannot give valid records: one clear error instead of one per row."""
        plan = self.plan
        expected = ", ".join(plan.spellings)
        aliases = [s for spellings in plan.spellings.values() for s in spellings if s not in plan.spellings]
        if aliases:
            expected += f" (or {', '.join(aliases)})"
        spellings = {name: self.spelling(name) for name in header}
        if not any(spellings.values()):
            raise UnreadableFileError(
                f"CSV header missing or not recognised: the first line is {', '.join(header)!r}; "
                f"expected the columns {expected}"
            )
        unknown = [name for name in header if spellings[name] is None]
        for name in unknown:
            self.report.note(_UNKNOWN_DECISION[self.policy], trimmed_name(name))
        if unknown and self.policy == "reject":
            raise UnreadableFileError(
                f"CSV header has unknown column(s) {', '.join(map(repr, unknown))}; expected {expected}"
            )
        fields = [plan.names[spelling] for spelling in spellings.values() if spelling is not None]
        twice = sorted({name for name in fields if fields.count(name) > 1})
        if twice:
            raise UnreadableFileError(f"CSV header gives the field(s) {', '.join(twice)} in two columns")
        missing = [name for name in plan.required if name not in fields]
        if missing:
            raise UnreadableFileError(f"CSV header lacks the required column(s) {', '.join(missing)}")
        rename = {name: spelling for name, spelling in spellings.items() if spelling is not None}
        for name, spelling in rename.items():
            if name != spelling:
                self.report.note("matched", f"{name!r} as {spelling}")
        if unknown or any(name != spelling for name, spelling in rename.items()):
            self.rename = rename
        if self.keeps:
            self.kept = [(name, trimmed_name(name)) for name in unknown]

    def csv_extras(self, row: Row) -> dict[str, str]:
        """A CSV row's kept unknown columns that have a value (an empty cell is no value)."""
        if not self.kept:
            return {}
        return {name: row[column] for column, name in self.kept if row[column]}  # type: ignore[index]

    def conform(self, given: dict[Any, Any]) -> tuple[dict[Any, Any], dict[str, str], str | None]:
        """A JSON record's keys under the contract: (schema input, kept extras, "given twice" reason)."""
        conformed: dict[Any, Any] = {}
        extras: dict[str, str] = {}
        seen: dict[str, str] = {}  # accepted spelling -> the key the record gave it as
        for key, value in given.items():
            spelling = self.spelling(key)
            if spelling is None:
                name = trimmed_name(key)
                self.report.note(_UNKNOWN_DECISION[self.policy], name)
                if self.policy == "reject":
                    conformed[key] = value  # the schema refuses it: "<key>: unknown field", as before
                elif self.keeps and value is not None and value != "":
                    extras[name] = value if isinstance(value, str) else _json_text(value)
                continue
            if spelling in seen:
                field_name = self.plan.names[spelling]
                return given, {}, f"{field_name}: given more than once, as {seen[spelling]!r} and {key!r}"
            if spelling != key:
                self.report.note("matched", f"{key!r} as {spelling}")
            seen[spelling] = key
            conformed[spelling] = value
        return conformed, extras, None

    def spellings_in(self, raw: Row) -> Container[str]:
        """The accepted spellings a record as read gives a value or an empty cell for."""
        if not isinstance(raw, dict):
            return ()
        return {spelling for key in raw if (spelling := self.spelling(key)) is not None}


_UNKNOWN_DECISION = {"reject": "rejected", "ignore": "ignored", "keep": "kept"}


def _json_text(value: object) -> str:
    # Sorted keys: the same record always gives the same text (a replay is byte-identical).
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# --- the plan ----------------------------------------------------------------------------------------


@functools.cache
def _plan(schema: type[BaseModel]) -> _Plan:
    attributes: list[Attribute] = []
    names: dict[str, str] = {}
    spellings: dict[str, tuple[str, ...]] = {}
    for name, info in schema.model_fields.items():
        if name in LINEAGE_ATTRIBUTES:
            raise ValueError(f"{schema.__name__}.{name} clashes with a lineage attribute")
        attributes.append((name, *_attribute_type(schema, name, info.annotation)))
        accepted = (name,) if info.alias in (None, name) else (name, str(info.alias))
        spellings[name] = accepted
        names.update(dict.fromkeys(accepted, name))
    required = tuple(name for name, info in schema.model_fields.items() if info.is_required())
    normal: dict[str, str] = {}
    for spelling, name in names.items():
        other = normal.setdefault(normalise_name(spelling), spelling)
        if names[other] != name:
            raise ValueError(
                f"{schema.__name__}: {other!r} and {spelling!r} differ only in case or spaces; header "
                "names are matched without either, so they would be the same column"
            )
    # left_to_right: a valid element is the model; anything else falls through to Any, unchanged.
    either = Annotated[schema | Any, Field(union_mode="left_to_right")]  # type: ignore[valid-type]
    adapter: TypeAdapter[list[Any]] = TypeAdapter(list[either])
    return _Plan(schema, adapter, tuple(attributes), names, spellings, required, normal)


def timestamp_text(value: datetime) -> str:
    """An aware datetime as fixed-form UTC text to the millisecond (``2024-05-01T10:00:00.000Z``): the
    curated zone's ``timestamp(ms, UTC)`` columns parse exactly this, and string order is time order."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_text(value: object) -> str:
    """A JSON value as compact JSON text, keys in the order given (deterministic for a given record)."""
    return orjson.dumps(value).decode()


def _attribute_type(
    schema: type[BaseModel], name: str, annotation: Any
) -> tuple[str, Callable[[Any], str] | None]:
    """How a field is stored: N (int, float, Decimal), S (str, Literal of str), or S holding the text of an
    AwareDatetime (ISO 8601, UTC) or of a JSON object (dict); anything else is refused."""
    base = annotation
    while True:
        origin = get_origin(base)
        if origin is Annotated:
            base = get_args(base)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(base) if arg is not type(None)]
            if len(options) != 1:
                break
            base = options[0]
        else:
            break
    if get_origin(base) is Literal and all(isinstance(arg, str) for arg in get_args(base)):
        return "S", None
    if get_origin(base) is dict:
        return "S", json_text
    if isinstance(base, type) and not issubclass(base, bool):
        if issubclass(base, str):
            return "S", None
        if base is AwareDatetime:  # a plain datetime may be naive: its instant is unknowable
            return "S", timestamp_text
        if issubclass(base, int | float | Decimal):
            return "N", str
        if issubclass(base, dict):
            return "S", json_text
    raise TypeError(
        f"{schema.__name__}.{name}: only str, int, float, Decimal, AwareDatetime and dict fields "
        f"become items, not {annotation}"
    )
