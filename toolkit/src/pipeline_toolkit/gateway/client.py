"""Calls to the ingest API as a signed-in user makes them: a batch of records, a file through a form.

``make demo`` uses it to send one batch through the local gateway and upload one file the way the page does
(the form the API hands out, posted straight to the landing bucket).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.ingest.uploads import expected_content_type

TIMEOUT_SECONDS = 60


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class ApiClient:
    url: str
    token: str

    def _call(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"API URL must be http(s): {self.url!r}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.url.rstrip("/") + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            raise ApiError(error.code, json.loads(raw) if raw else None) from None
        return json.loads(raw) if raw else None

    def send_batch(self, dataset: str, ndjson: bytes, idempotency_key: str | None = None) -> dict[str, Any]:
        """``POST /events/{dataset}``: the answer (landing key, accepted and rejected records)."""
        headers = {
            "Content-Type": "application/x-ndjson",
            "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
        }
        result: dict[str, Any] = self._call("POST", f"/events/{dataset}", ndjson, headers)
        return result

    def upload(self, path: Path) -> str:
        """Ask for a presigned form, post the file with it; the landing key."""
        content_type = expected_content_type(path.name)
        if content_type is None:
            raise ValueError(f"{path.name}: the API takes no file of this type")
        data = path.read_bytes()
        request = {"file_name": path.name, "content_type": content_type, "size": len(data)}
        form: dict[str, Any] = self._call(
            "POST", "/uploads", json.dumps(request).encode(), {"Content-Type": "application/json"}
        )
        body, multipart_type = multipart(form["fields"], path.name, content_type, data)
        post = urllib.request.Request(  # noqa: S310 - the bucket's URL, from the API
            form["url"], data=body, method="POST", headers={"Content-Type": multipart_type}
        )
        if not post.full_url.startswith(("http://", "https://")):
            raise ValueError(f"form URL must be http(s): {form['url']!r}")
        try:
            with urllib.request.urlopen(post, timeout=TIMEOUT_SECONDS):  # noqa: S310
                pass
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, error.read().decode(errors="replace")[:500]) from None
        return str(form["key"])


def multipart(fields: dict[str, str], file_name: str, content_type: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body: the form's fields in order, then ``file`` (S3 ignores fields after it)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
