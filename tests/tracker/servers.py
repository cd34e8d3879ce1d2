"""Real HTTP servers on 127.0.0.1 for the tracker's tests: a fault-injecting proxy, and a small stand-in of
the ingest API's ``POST /events/{dataset}`` for the tests that need no emulator.

The proxy takes one fault per request, in order, from its plan (then passes everything): ``reset`` (the
connection is reset before anything is forwarded), ``reset-after`` (forwarded, the API's answer thrown away
and the connection reset: the batch landed but the client cannot know), ``hold`` (forwarded, then the answer
held until :meth:`FaultProxy.release`, then reset: for killing the client while it waits), or a
:class:`Status` answered by the proxy itself (503, 429 with ``Retry-After``...). It records each request's
idempotency key and the fault it got.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Status:
    code: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""


Fault = str | Status


@dataclass(frozen=True)
class Seen:
    path: str
    idempotency_key: str
    fault: str
    body: bytes


def _reset(connection: socket.socket) -> None:
    """Close with a TCP RST (linger 0), as a crashed peer or a middlebox would."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets make the handler's last writes fail: expected here


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway: the client reuses connections

    def log_message(self, format: str, *args: object) -> None:
        pass

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the connection was reset on purpose
            super().finish()

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Serving:
    """Serves on 127.0.0.1, a free port, in a thread of this process; :meth:`stop` ends it."""

    server: _Server

    def _serve(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.server = _Server(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


def expect_line(process: subprocess.Popen[str], line: str) -> None:
    """The next line ``process`` prints is ``line`` (a child reporting it got so far)."""
    assert process.stdout is not None
    assert process.stdout.readline().strip() == line


class FaultProxy(_Serving):
    def __init__(self, upstream: str, faults: Iterable[Fault] = ()) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.faults: deque[Fault] = deque(faults)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.held = threading.Event()  # a request is being held
        self._release = threading.Event()
        proxy = self

        class Handler(_Base):
            def do_POST(self) -> None:
                proxy._handle(self)

        self._serve(Handler)

    def add(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    def release(self) -> None:
        self._release.set()

    def kill_when_held(
        self, process: subprocess.Popen[Any], timeout: float, ready: Callable[[], None] | None = None
    ) -> None:
        """SIGKILL ``process`` (a client) once a request of its is held, as Lambda or an OOM kill would: no
        chance to flush or clean up; then let the held request go. ``ready`` (a check of the process's
        output, say) runs first; the process is killed whatever it raises."""
        try:
            if ready is not None:
                ready()
            assert self.held.wait(timeout), "no request was held"
            os.kill(process.pid, signal.SIGKILL)
            process.wait(60)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        self.release()

    def keys(self) -> list[str]:
        with self.lock:
            return [seen.idempotency_key for seen in self.seen]

    def _handle(self, handler: _Base) -> None:
        body = handler._body()
        with self.lock:
            fault = self.faults.popleft() if self.faults else "pass"
            name = f"status {fault.code}" if isinstance(fault, Status) else fault
            self.seen.append(Seen(handler.path, handler.headers.get("Idempotency-Key", ""), name, body))
        if fault == "reset":
            _reset(handler.connection)
            handler.close_connection = True
            return
        if isinstance(fault, Status):
            answer = json.dumps({"message": fault.message or f"injected {fault.code}"}).encode()
            headers = [("Content-Type", "application/json"), *fault.headers.items()]
            handler._answer(fault.code, answer, headers)
            return
        status, headers, answer = self._forward(handler, body)
        if fault in ("reset-after", "hold"):
            if fault == "hold":
                self.held.set()
                self._release.wait()
            _reset(handler.connection)
            handler.close_connection = True
            return
        handler._answer(status, answer, headers)

    def _forward(self, handler: _Base, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_HEADERS}
            upstream.request(handler.command, handler.path, body=body, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_HEADERS]
            return response.status, kept, answer
        finally:
            upstream.close()


class FakeIngestApi(_Serving):
    """``POST /events/{dataset}`` as the ingest API answers it, in memory: NDJSON records, ``Bearer good``,
    a record with ``"bad"`` in it rejected, nothing valid 422, one landing per idempotency key (a retry is a
    replay, the same key with another body 409). ``landed`` maps each key to its accepted records."""

    TOKEN = "good"

    def __init__(self, port: int = 0, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.landed: dict[str, list[dict[str, Any]]] = {}
        self.bodies: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []  # (path, key, records)
        self.lock = threading.Lock()
        api = self

        class Handler(_Base):
            def do_POST(self) -> None:
                api._handle(self)

        self._serve(Handler, port)

    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            return [record for records in self.landed.values() for record in records]

    def _handle(self, handler: _Base) -> None:
        body = handler._body()
        key = handler.headers.get("Idempotency-Key", "")
        lines = [line for line in body.splitlines() if line.strip()]
        with self.lock:
            self.requests.append((handler.path, key, len(lines)))
        if handler.headers.get("Authorization") != f"Bearer {self.TOKEN}":
            self._json(handler, 401, {"message": "Unauthorized"})
            return
        if self.max_bytes is not None and len(body) > self.max_bytes:
            self._json(handler, 413, {"statusCode": 413, "message": f"{len(body)} bytes: too large"})
            return
        if not handler.path.startswith("/events/"):
            self._json(handler, 404, {"message": "Not found"})
            return
        records = [json.loads(line) for line in lines]
        rejected = [
            {"index": index, "reasons": ["bad: flagged by the test"]}
            for index, record in enumerate(records)
            if "bad" in record
        ]
        accepted = [record for record in records if "bad" not in record]
        result = {
            "batch_id": key,
            "dataset": handler.path.rsplit("/", 1)[-1],
            "key": f"events/test/{key}.jsonl",
            "records_received": len(records),
            "records_accepted": len(accepted),
            "records_rejected": len(rejected),
            "rejected": rejected,
        }
        if not accepted:
            self._json(handler, 422, result)
            return
        with self.lock:
            if key in self.bodies:
                if self.bodies[key] != body:
                    message = "this Idempotency-Key was used for another batch"
                    self._json(handler, 409, {"statusCode": 409, "message": message})
                    return
                replayed = True
            else:
                self.bodies[key], self.landed[key] = body, accepted
                replayed = False
        self._json(handler, 202, result, [("Idempotent-Replayed", "true" if replayed else "false")])

    @staticmethod
    def _json(handler: _Base, status: int, document: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        handler._answer(
            status, json.dumps(document).encode(), [("Content-Type", "application/json"), *headers]
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
