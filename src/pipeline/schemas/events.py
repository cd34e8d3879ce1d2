"""The ``events`` record: one click-stream event (a page view, a click...), as JSON Lines.

Accepted field names: the snake_case field names, or ``type`` for ``event_type`` and ``timestamp`` for
``occurred_at`` (either spelling per record, not both for one field). Unknown fields are rejected: anything
event-specific belongs in ``properties``.

- ``event_id`` (required, the record's key): trimmed, 1-256 characters; a JSON number is taken as its text.
- ``event_type`` (required): trimmed, 1-64 characters.
- ``occurred_at`` (required): an ISO 8601 timestamp *with* a time zone (``2024-05-01T10:00:00Z``,
  ``...+02:00``); a naive one is refused, since its instant is unknowable. Kept to the millisecond, in UTC.
- ``user_id`` (optional): as for ``users``; an anonymous event has none.
- ``properties`` (optional, default ``{}``): a JSON object, kept as compact JSON text in the curated zone.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from pipeline.schemas.users import Message, UserId

EventId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    Message("must be a non-empty string of at most 256 characters"),
]
EventType = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    Message("must be a non-empty string of at most 64 characters"),
]
OccurredAt = Annotated[
    AwareDatetime,
    Message("must be an ISO 8601 timestamp with a time zone, such as 2024-05-01T10:00:00Z"),
]
Properties = Annotated[dict[str, Any], Message("must be a JSON object")]


class EventRecord(BaseModel):
    """One event. Field names are the curated column names; aliases are the common click-stream spellings."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)

    event_id: EventId = Field(coerce_numbers_to_str=True)
    user_id: UserId | None = Field(default=None, coerce_numbers_to_str=True)
    event_type: EventType = Field(alias="type")
    occurred_at: OccurredAt = Field(alias="timestamp")
    properties: Properties = Field(default_factory=dict)
