"""The upload page on 127.0.0.1, as CloudFront serves it on AWS: the files of ``web/`` plus ``config.json``.

On AWS the page's files are objects of a private bucket and Terraform writes ``config.json`` beside them; here
the same files are served from the checkout and ``config.json`` points the page at the emulator's user pool
and the local gateway. The headers are the ones the site's CloudFront response policy sets, so a page that
needs a looser Content-Security-Policy fails here first.

Only the files present in the directory when the server starts are served (a fixed map of names, no path
handling): nothing outside it can be reached, whatever the request path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline_toolkit.gateway.loopback import LoopbackServer

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True, slots=True)
class PageConfig:
    """What ``config.json`` tells the page (the same keys the site module's ``config.json`` has)."""

    region: str
    user_pool_id: str
    user_pool_client_id: str
    cognito_endpoint: str
    api_endpoint: str
    upload_endpoint: str
    max_upload_bytes: int | None = None

    def document(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "userPoolId": self.user_pool_id,
            "userPoolClientId": self.user_pool_client_id,
            "cognitoEndpoint": self.cognito_endpoint,
            "apiEndpoint": self.api_endpoint,
            "maxUploadBytes": self.max_upload_bytes,
        }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(config: PageConfig) -> dict[str, str]:
    """The headers of every answer: a CSP that lets the page talk only to its pool, API and bucket."""
    connect = " ".join(
        dict.fromkeys(
            _origin(url) for url in (config.api_endpoint, config.cognito_endpoint, config.upload_endpoint)
        )
    )
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {connect}; form-action 'none'; frame-ancestors 'none'; "
            f"base-uri 'none'; object-src 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cache-Control": "no-store",
    }


def page_files(directory: Path) -> dict[str, tuple[bytes, str]]:
    """URL path → (body, content type) for each servable file of ``directory`` (index.html also at ``/``)."""
    if not (directory / "index.html").is_file():
        raise FileNotFoundError(f"no upload page in {directory} (index.html is missing)")
    files = {
        f"/{path.relative_to(directory).as_posix()}": (path.read_bytes(), CONTENT_TYPES[path.suffix])
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.suffix in CONTENT_TYPES and path.name != "config.json"
    }
    files["/"] = files["/index.html"]
    return files


class PageServer(LoopbackServer):
    """The page on ``127.0.0.1:port`` (0: a free one), in a thread of this process."""

    def __init__(self, directory: Path, config: PageConfig, port: int = 0) -> None:
        files = page_files(directory)
        files["/config.json"] = (json.dumps(config.document()).encode(), "application/json")
        headers = security_headers(config)

        class Handler(BaseHTTPRequestHandler):
            server_version = "pipeline-page"

            def do_GET(self) -> None:
                self._answer(send_body=True)

            def do_HEAD(self) -> None:
                self._answer(send_body=False)

            def _answer(self, *, send_body: bool) -> None:
                found = files.get(urlsplit(self.path).path)
                body, content_type = found or (b"not found\n", "text/plain; charset=utf-8")
                self.send_response(HTTPStatus.OK if found else HTTPStatus.NOT_FOUND)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the gateway's access log is the one that matters; page requests stay quiet

        super().__init__(Handler, port, name="page")
