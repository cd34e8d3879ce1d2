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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

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
) -> Iterator[ValidatedBatch]:
    """Read, validate and serialise ``stream`` in batches of ``batch_size`` records (not lines).

    ``skip_records`` records are read (and numbered) but not validated: a load that resumes after them.

    Yields nothing for a file without records. Each item holds the schema's fields that have a value
    (None and "" are left out: DynamoDB refuses empty strings in key attributes) plus the lineage
    attributes ``source_bucket``, ``source_key``, ``source_version``, ``line``, ``source_event_time`` and
    ``source_order``. Items depend only on the file and ``ref``: a replay gives byte-identical items.
    ``batch_size`` may be a function, asked before each batch (a load paced by its time budget).
    """
    if isinstance(batch_size, int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        next_size: Callable[[], int] = functools.partial(int, batch_size)
    else:
        next_size = batch_size
    plan = _plan(schema)
    on_header = functools.partial(_check_header, plan) if fmt == "csv" else None
    rows = iter_rows(
        stream, fmt, gzipped=gzipped, delimiter=delimiter, on_header=on_header, line_offset=line_offset
    )
    if skip_records:
        rows = islice(rows, skip_records, None)
    prepare = _PREPARE[fmt]
    # Built once per file and shared by its items (one dict per attribute, not per item, saves the
    # allocator and the garbage collector a lot of work): treat items as read-only.
    lineage: Item = {name: {"S": value} for name, value in ref.lineage().items()}
    while True:
        with _gc_paused():
            batch = list(islice(rows, max(1, next_size())))
            if not batch:
                return
            validated = _validate(plan, lineage, prepare(batch))
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


def _prepare_csv(batch: list[tuple[int, Row]]) -> _Prepared:
    raws = [row for _, row in batch]
    if any(type(row) is MalformedRow for row in raws):
        return _Prepared.one_by_one(batch, _csv_input)
    # An empty cell is "no value": CSV cannot tell empty from missing.
    inputs: list[object] = [{key: value for key, value in row.items() if value} for row in raws]  # type: ignore[attr-defined]
    return _Prepared([line for line, _ in batch], inputs, raws, [])


def _csv_input(line: int, row: Row) -> object:
    if isinstance(row, MalformedRow):
        return Rejection(line, [row.reason], row.raw)
    return {key: value for key, value in row.items() if value}  # type: ignore[attr-defined]


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
    "csv": _prepare_csv,
    "jsonl": _prepare_jsonl,
    "json": _prepare_json,
}


def _jsonl_text(row: Row) -> object:
    # The reader checked the file is UTF-8, so this decode cannot fail.
    return row.decode("utf-8").rstrip("\r") if isinstance(row, bytes) else row


# --- validation and serialisation ----------------------------------------------------------------------


def _validate(plan: _Plan, lineage: Item, batch: _Prepared) -> ValidatedBatch:
    # One compiled pass over the batch: each element comes back as a model, or as the input itself
    # when it is invalid. Only those few are validated again, alone, to learn why.
    outcomes = plan.adapter.validate_python(batch.inputs)
    schema, attributes = plan.schema, plan.attributes
    rejected = batch.rejected
    items: list[Item] = []
    for line, outcome, given, raw in zip(batch.lines, outcomes, batch.inputs, batch.raws, strict=True):
        model = outcome
        if type(model) is not schema:
            try:
                model = schema.model_validate(given)
            except ValidationError as exc:
                rejected.append(Rejection(line, _reasons(plan, exc, given, raw), _jsonl_text(raw)))
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
    if rejected:
        rejected.sort(key=lambda rejection: rejection.line)
    return ValidatedBatch(items=items, rejections=rejected, records_read=len(items) + len(rejected))


_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    type(None): "null",
}


def _reasons(plan: _Plan, exc: ValidationError, prepared: object, raw: Row) -> list[str]:
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
                empty = isinstance(raw, dict) and any(spelling in raw for spelling in plan.spellings[name])
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


def _check_header(plan: _Plan, header: Sequence[str]) -> None:
    """Refuse a CSV file whose header cannot give valid records: one clear error instead of one per row."""
    expected = ", ".join(plan.spellings)
    aliases = [s for spellings in plan.spellings.values() for s in spellings if s not in plan.spellings]
    if aliases:
        expected += f" (or {', '.join(aliases)})"
    if not any(name in plan.names for name in header):
        raise UnreadableFileError(
            f"CSV header missing or not recognised: the first line is {', '.join(header)!r}; "
            f"expected the columns {expected}"
        )
    unknown = [name for name in header if name not in plan.names]
    if unknown:
        raise UnreadableFileError(
            f"CSV header has unknown column(s) {', '.join(map(repr, unknown))}; expected {expected}"
        )
    fields = [plan.names[name] for name in header]
    twice = sorted({name for name in fields if fields.count(name) > 1})
    if twice:
        raise UnreadableFileError(f"CSV header gives the field(s) {', '.join(twice)} in two columns")
    missing = [name for name in plan.required if name not in fields]
    if missing:
        raise UnreadableFileError(f"CSV header lacks the required column(s) {', '.join(missing)}")


# --- the plan ----------------------------------------------------------------------------------------


@functools.cache
def _plan(schema: type[BaseModel]) -> _Plan:
    attributes: list[Attribute] = []
    names: dict[str, str] = {}
    spellings: dict[str, tuple[str, ...]] = {}
    for name, field in schema.model_fields.items():
        if name in LINEAGE_ATTRIBUTES:
            raise ValueError(f"{schema.__name__}.{name} clashes with a lineage attribute")
        attributes.append((name, *_attribute_type(schema, name, field.annotation)))
        accepted = (name,) if field.alias in (None, name) else (name, str(field.alias))
        spellings[name] = accepted
        names.update(dict.fromkeys(accepted, name))
    required = tuple(name for name, field in schema.model_fields.items() if field.is_required())
    # left_to_right: a valid element is the model; anything else falls through to Any, unchanged.
    either = Annotated[schema | Any, Field(union_mode="left_to_right")]  # type: ignore[valid-type]
    adapter: TypeAdapter[list[Any]] = TypeAdapter(list[either])
    return _Plan(schema, adapter, tuple(attributes), names, spellings, required)


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
