"""The ``events`` record: what is accepted, what is refused, and how it becomes an item."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.datasets import EVENTS
from pipeline.objects import ObjectRef
from pipeline.schemas.events import EventRecord
from pipeline.validation import iter_validated_batches

REF = ObjectRef(bucket="b", key="events.jsonl", event_time=datetime(2026, 1, 1, tzinfo=UTC))


def validate(*records: Any) -> tuple[list[dict[str, Any]], list[list[str]]]:
    body = b"".join(orjson.dumps(record) + b"\n" for record in records)
    items, reasons = [], []
    for batch in iter_validated_batches(io.BytesIO(body), schema=EventRecord, ref=REF, fmt="jsonl"):
        items += [
            {k: v for k, v in item.items() if k not in {"source_bucket", "source_key"}}
            for item in batch.items
        ]
        reasons += [rejection.reasons for rejection in batch.rejections]
    return items, reasons


def test_both_spellings_are_accepted_and_normalised() -> None:
    items, reasons = validate(
        {"event_id": " e-1 ", "type": "click", "timestamp": "2024-05-01T12:00:00.123456+02:00"},
        {
            "event_id": 2,
            "event_type": "view",
            "occurred_at": "2024-05-01T10:00:00Z",
            "user_id": "u1",
            "properties": {"b": 1, "a": [True, None]},
        },
    )
    assert reasons == []
    assert items[0]["event_id"] == {"S": "e-1"}
    assert items[0]["occurred_at"] == {"S": "2024-05-01T10:00:00.123Z"}  # UTC, to the millisecond
    assert items[0]["properties"] == {"S": "{}"}
    assert "user_id" not in items[0]
    assert items[1]["event_id"] == {"S": "2"}
    assert items[1]["properties"] == {"S": '{"b":1,"a":[true,null]}'}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "click", "timestamp": "2024-05-01T10:00:00Z"}, "event_id: required field is missing"),
        ({"event_id": "e", "timestamp": "2024-05-01T10:00:00Z"}, "event_type: required field is missing"),
        (
            {"event_id": "e", "type": "click", "timestamp": "2024-05-01T10:00:00"},
            "occurred_at: must be an ISO",
        ),
        ({"event_id": "e", "type": "click", "timestamp": "yesterday"}, "occurred_at: must be an ISO"),
        (
            {"event_id": "e", "type": "click", "timestamp": "2024-05-01T10:00:00Z", "properties": [1]},
            "properties: must be a JSON object",
        ),
        (
            {"event_id": "e", "type": "click", "timestamp": "2024-05-01T10:00:00Z", "path": "/"},
            "path: unknown field",
        ),
    ],
)
def test_bad_events_are_rejected_with_a_reason(record: dict[str, Any], reason: str) -> None:
    items, reasons = validate(record)
    assert items == []
    assert any(r.startswith(reason) for r in reasons[0]), reasons


def test_the_sample_file_validates() -> None:
    with (Path(__file__).resolve().parents[2] / "samples" / "events.jsonl").open("rb") as sample:
        assert EVENTS.schema is not None
        batches = list(iter_validated_batches(sample, schema=EVENTS.schema, ref=REF, fmt="jsonl"))
    assert sum(len(b.items) for b in batches) == 3
    assert all(not b.rejections for b in batches)
