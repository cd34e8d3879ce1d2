"""Handlers for the container tests, copied into an image derived from the function image (stdlib only).

Each shows one way an invocation ends in Lambda: an answer, an exception, a timeout, an out-of-memory kill,
a crashed runtime.
"""

from __future__ import annotations

import os
import time
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "event": event,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "function_name": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "setting": os.environ.get("TEST_SETTING"),
        "pid": os.getpid(),
    }


def fail(event: dict[str, Any], context: Any) -> None:
    raise ValueError("bad input")


def sleep(event: dict[str, Any], context: Any) -> None:
    time.sleep(float(event["seconds"]))


def hog(event: dict[str, Any], context: Any) -> int:
    chunks = []
    for _ in range(int(event["mib"])):
        chunk = bytearray(1 << 20)
        chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page, so it is really resident
        chunks.append(chunk)
    return len(chunks)


def crash(event: dict[str, Any], context: Any) -> None:
    os._exit(3)
