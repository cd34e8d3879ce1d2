"""Handlers the runtime tests deploy: they record each invocation and fail on demand.

Imported by worker processes (the tests put this folder on the worker's PYTHONPATH). What a message asks
for is in its body: ``fail`` (reported in batchItemFailures), ``raise`` (the invocation raises),
``sleep:<seconds>``, ``bogus-id`` (answers with an identifier that is not in the batch); anything else
succeeds. Each invocation is written to ``$RECORD_DIR/<request id>.json`` with the event, the context and
the process environment; ``$RECORD_DIR/<request id>.started`` is written when it begins.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def _record(context: Any, name: str, content: dict[str, Any]) -> None:
    directory = Path(os.environ["RECORD_DIR"])
    (directory / f"{context.aws_request_id}.{name}").write_text(json.dumps(content))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record(context, "started", {"bodies": [record["body"] for record in event["Records"]]})
    failures = []
    for record in event["Records"]:
        body = record["body"]
        if body.startswith("sleep:"):
            time.sleep(float(body.split(":", 1)[1]))
        elif body == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
        elif body == "bogus-id":
            failures.append({"itemIdentifier": "not-in-this-batch"})
    _record(
        context,
        "json",
        {
            "event": event,
            "context": {
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "log_group_name": context.log_group_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
            },
            "environ": dict(os.environ),
            "pid": os.getpid(),
        },
    )
    if any(record["body"] == "raise" for record in event["Records"]):
        raise RuntimeError("asked to raise")
    return {"batchItemFailures": failures}
