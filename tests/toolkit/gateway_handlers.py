"""Functions the gateway tests put behind the local gateway (imported by its function processes)."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers with what the function was given; ``?sleep=<s>`` first sleeps (past the timeout, say)."""
    seconds = float((event.get("queryStringParameters") or {}).get("sleep", "0"))
    if seconds:
        time.sleep(seconds)
    if (event.get("queryStringParameters") or {}).get("raise"):
        raise RuntimeError("asked to fail")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-pid": str(os.getpid())},
        "body": json.dumps({"event": event, "remaining_ms": context.get_remaining_time_in_millis()}),
    }
