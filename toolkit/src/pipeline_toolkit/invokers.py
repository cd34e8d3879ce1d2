"""How the runtime calls a function: in this process, or over HTTP through the Runtime Interface Emulator.

Both answer the same question, "did the invocation succeed, and what did the function return?", so the
poller is the same whichever runs the code.
"""

from __future__ import annotations

import importlib
import json
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline_toolkit.context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]

# Path the Runtime Interface Emulator (and the AWS base images that carry it) serves invocations on.
RIE_INVOCATIONS_PATH = "/2015-03-31/functions/function/invocations"


@dataclass(frozen=True, slots=True)
class Invocation:
    """The outcome of one invocation: ``ok`` is False when the function raised, timed out or crashed."""

    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> Invocation: ...


def load_handler(dotted: str) -> Handler:
    """``package.module.function`` -> the function (the way the Python runtime resolves ``_HANDLER``)."""
    module_name, _, attribute = dotted.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {dotted!r} is not of the form module.function")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise TypeError(f"handler {dotted!r} is not callable")
    return handler  # type: ignore[no-any-return]


class InProcessInvoker:
    """Imports the handler on first use (the cold start) and calls it in this process."""

    def __init__(self, handler: str) -> None:
        self.handler_path = handler
        self._handler: Handler | None = None

    def _resolve(self) -> Handler:
        if self._handler is None:
            self._handler = load_handler(self.handler_path)
        return self._handler

    def warm(self) -> bool:
        """Import the handler now (Lambda's init phase); on failure every invocation will report it."""
        try:
            self._resolve()
        except Exception:  # reported again, per invocation, by invoke()
            traceback.print_exc()
            return False
        return True

    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> Invocation:
        try:
            handler = self._resolve()
        except Exception as error:  # reported like Runtime.ImportModuleError
            traceback.print_exc()
            return Invocation(ok=False, error_type="Runtime.ImportModuleError", error_message=str(error))
        try:
            payload = handler(event, context)
            # A real runtime serialises the answer; an answer that cannot be is a failed invocation.
            json.dumps(payload)
        except Exception as error:  # any exception fails the invocation, as in Lambda
            traceback.print_exc()
            return Invocation(ok=False, error_type=type(error).__name__, error_message=str(error))
        return Invocation(ok=True, payload=payload)


class HttpInvoker:
    """POSTs the event to a function container's Runtime Interface Emulator.

    The emulator answers 200 even when the function failed: the body is then an error object
    (``errorType``/``errorMessage``), the text ``Task timed out after ...``, or empty if the process died.
    """

    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        self.url = base_url.rstrip("/") + RIE_INVOCATIONS_PATH
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"invoker URL must be http(s): {base_url!r}")
        self.timeout_seconds = timeout_seconds

    def invoke(self, event: dict[str, Any], context: LocalLambdaContext) -> Invocation:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json", "X-Amz-Request-Id": context.aws_request_id},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310
                body = response.read()
                function_error = response.headers.get("X-Amz-Function-Error")
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            return Invocation(ok=False, error_type="Runtime.InvokeError", error_message=str(error))
        return interpret_rie_response(body, function_error)


def interpret_rie_response(body: bytes, function_error: str | None = None) -> Invocation:
    """Read a Runtime Interface Emulator answer as success or failure."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return Invocation(ok=False, error_type="Runtime.ExitError", error_message="empty response")
    try:
        payload = json.loads(text)
    except ValueError:
        # e.g. "Task timed out after 3.00 seconds"
        return Invocation(ok=False, error_type="Runtime.Error", error_message=text[:500])
    if function_error or (isinstance(payload, dict) and {"errorType", "errorMessage"} & payload.keys()):
        details = payload if isinstance(payload, dict) else {}
        return Invocation(
            ok=False,
            error_type=str(details.get("errorType") or function_error or "Unhandled"),
            error_message=str(details.get("errorMessage", "")),
        )
    return Invocation(ok=True, payload=payload)
