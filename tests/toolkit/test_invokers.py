"""Invokers: the in-process one and the HTTP one that talks to a Runtime Interface Emulator."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.invokers import (
    RIE_INVOCATIONS_PATH,
    HttpInvoker,
    InProcessInvoker,
    interpret_rie_response,
)

EVENT: dict[str, Any] = {"Records": [{"messageId": "m-1", "body": "hello"}]}


def context(timeout: int = 3) -> LocalLambdaContext:
    return LocalLambdaContext(
        function_name="fn",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        memory_limit_in_mb=128,
        timeout_seconds=timeout,
    )


def echo_handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"echo": event["Records"][0]["body"], "remaining": ctx.get_remaining_time_in_millis()}


def raising_handler(event: dict[str, Any], ctx: Any) -> None:
    raise ValueError("bad input")


def unserialisable_handler(event: dict[str, Any], ctx: Any) -> object:
    return object()


def test_in_process_invoker_calls_the_named_handler() -> None:
    invocation = InProcessInvoker(f"{__name__}.echo_handler").invoke(EVENT, context())

    assert invocation.ok
    assert invocation.payload["echo"] == "hello"
    assert 0 < invocation.payload["remaining"] <= 3000


def test_an_exception_fails_the_invocation() -> None:
    invocation = InProcessInvoker(f"{__name__}.raising_handler").invoke(EVENT, context())

    assert not invocation.ok
    assert invocation.error_type == "ValueError"
    assert invocation.error_message == "bad input"


def test_an_answer_that_cannot_be_serialised_fails_the_invocation() -> None:
    assert not InProcessInvoker(f"{__name__}.unserialisable_handler").invoke(EVENT, context()).ok


def test_a_missing_handler_is_an_import_error_per_invocation() -> None:
    invoker = InProcessInvoker("no_such_module_here.handler")

    assert not invoker.warm()
    invocation = invoker.invoke(EVENT, context())
    assert not invocation.ok
    assert invocation.error_type == "Runtime.ImportModuleError"


@pytest.mark.parametrize(
    ("body", "header", "ok"),
    [
        (b'{"batchItemFailures": []}', None, True),
        (b"null", None, True),
        (b'{"errorType": "ValueError", "errorMessage": "boom", "stackTrace": []}', None, False),
        (b'{"anything": 1}', "Unhandled", False),
        (b"Task timed out after 3.00 seconds", None, False),
        (b"", None, False),
    ],
)
def test_rie_answers_are_read_as_success_or_failure(body: bytes, header: str | None, ok: bool) -> None:
    assert interpret_rie_response(body, header).ok is ok


class FakeRie(BaseHTTPRequestHandler):
    """Answers like the Runtime Interface Emulator: echoes the event back, or an error object."""

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        event = json.loads(self.rfile.read(length))
        if self.path != RIE_INVOCATIONS_PATH:
            self.send_response(404)
            self.end_headers()
            return
        body = event["Records"][0]["body"]
        answer = (
            {"errorType": "RuntimeError", "errorMessage": "asked to"} if body == "raise" else {"got": body}
        )
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def fake_rie() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRie)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_invoker_posts_the_event_to_the_rie_path(fake_rie: str) -> None:
    invocation = HttpInvoker(fake_rie, timeout_seconds=5).invoke(EVENT, context())

    assert invocation.ok
    assert invocation.payload == {"got": "hello"}


def test_http_invoker_reads_an_error_object_as_failure(fake_rie: str) -> None:
    event = {"Records": [{"messageId": "m-1", "body": "raise"}]}

    invocation = HttpInvoker(fake_rie, timeout_seconds=5).invoke(event, context())

    assert not invocation.ok
    assert invocation.error_type == "RuntimeError"


def test_http_invoker_reports_an_unreachable_container_as_failure() -> None:
    invocation = HttpInvoker("http://127.0.0.1:9", timeout_seconds=1).invoke(EVENT, context())

    assert not invocation.ok
    assert invocation.error_type == "Runtime.InvokeError"
