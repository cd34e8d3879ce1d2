"""One execution environment of a function that answers invocations over HTTP, like the Runtime Interface
Emulator of a function image: ``POST /2015-03-31/functions/function/invocations`` with the event as body.

Started by :class:`pipeline_toolkit.gateway.functions.FunctionPool` as ``python -m
pipeline_toolkit.gateway.function_server`` with the function's own environment only (as the runtime's
workers are), it reads the function's configuration on standard input, imports the handler (the init phase),
prints the port it listens on and serves one invocation at a time, as one Lambda sandbox does. An invocation
that outlives the function's timeout ends the process; the pool starts a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

from pipeline_toolkit.context import LocalLambdaContext
from pipeline_toolkit.deployment import FunctionConfig
from pipeline_toolkit.invokers import RIE_INVOCATIONS_PATH, InProcessInvoker
from pipeline_toolkit.worker import PARENT_CHECK_SECONDS, kill_on_timeout

log = logging.getLogger("pipeline_toolkit.gateway.function_server")


def make_handler(function: FunctionConfig, invoker: InProcessInvoker) -> type[BaseHTTPRequestHandler]:
    class InvocationHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != RIE_INVOCATIONS_PATH:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            length = int(self.headers.get("Content-Length") or 0)
            event = json.loads(self.rfile.read(length) or b"{}")
            context = LocalLambdaContext(
                function_name=function.name,
                invoked_function_arn=function.arn,
                memory_limit_in_mb=function.memory_mb,
                timeout_seconds=function.timeout_seconds,
                aws_request_id=self.headers.get("X-Amz-Request-Id") or str(uuid.uuid4()),
            )
            with kill_on_timeout(context):
                outcome = invoker.invoke(event, context)
            if outcome.ok:
                body, error = json.dumps(outcome.payload).encode(), None
            else:
                error = "Unhandled"
                body = json.dumps(
                    {"errorType": outcome.error_type, "errorMessage": outcome.error_message}
                ).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if error:
                self.send_header("X-Amz-Function-Error", error)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    return InvocationHandler


def _watch_parent(server: HTTPServer) -> None:
    parent = os.getppid()
    while not threading.Event().wait(PARENT_CHECK_SECONDS):
        if os.getppid() != parent:
            log.warning("gateway went away; stopping")
            server.shutdown()
            return


def main() -> int:
    function = FunctionConfig.from_json(sys.stdin.read())
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format=f"%(asctime)s {function.name} %(message)s"
    )
    invoker = InProcessInvoker(function.handler)
    invoker.warm()
    server = HTTPServer(("127.0.0.1", 0), make_handler(function, invoker))
    threading.Thread(target=_watch_parent, args=(server,), daemon=True, name="watch-parent").start()
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
