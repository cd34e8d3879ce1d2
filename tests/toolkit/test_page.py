"""The local page server: the files of ``web/`` and a ``config.json`` for the stack, nothing else."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_toolkit.gateway.page import PageConfig, PageServer, page_files
from pipeline_toolkit.project import project_dir

CONFIG = PageConfig(
    region="us-east-1",
    user_pool_id="us-east-1_pool",
    user_pool_client_id="client-1",
    cognito_endpoint="http://127.0.0.1:5001/",
    api_endpoint="http://127.0.0.1:5002",
    upload_endpoint="http://127.0.0.1:5001",
    max_upload_bytes=1024,
)


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    web = tmp_path / "web"
    (web / "img").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>page</title>")
    (web / "app.js").write_text("console.log(1);")
    (web / "img" / "logo.svg").write_text("<svg/>")
    (web / "config.json").write_text('{"apiEndpoint": "https://stale.example.com"}')
    (web / "notes.txt").write_text("not a page file")
    (tmp_path / "secret.txt").write_text("outside the page")
    server = PageServer(web, CONFIG).start()
    yield server.url, tmp_path
    server.stop()


def test_the_page_and_its_files_are_served_with_their_types(site: tuple[str, Path]) -> None:
    url, _ = site
    status, headers, body = get(url + "/")
    assert (status, body) == (200, b"<!doctype html><title>page</title>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert get(url + "/app.js")[1]["content-type"] == "text/javascript; charset=utf-8"
    assert get(url + "/img/logo.svg")[0] == 200
    status, headers, body = get(url + "/index.html", "HEAD")
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(len("<!doctype html><title>page</title>"))


def test_config_json_is_generated_for_the_stack_not_read_from_the_directory(site: tuple[str, Path]) -> None:
    url, _ = site
    status, headers, body = get(url + "/config.json?cache=no")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body) == {
        "region": "us-east-1",
        "userPoolId": "us-east-1_pool",
        "userPoolClientId": "client-1",
        "cognitoEndpoint": "http://127.0.0.1:5001/",
        "apiEndpoint": "http://127.0.0.1:5002",
        "maxUploadBytes": 1024,
    }


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/%2e%2e/secret.txt", "/notes.txt", "/img/", "/web/index.html", "//etc/passwd"]
)
def test_nothing_else_is_reachable(site: tuple[str, Path], path: str) -> None:
    url, _ = site
    status, _, body = get(url + path)
    assert status == 404
    assert b"outside" not in body


def test_every_answer_carries_a_csp_naming_only_the_stacks_endpoints(site: tuple[str, Path]) -> None:
    url, _ = site
    for path in ("/", "/config.json", "/missing"):
        headers = get(url + path)[1]
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "connect-src 'self' http://127.0.0.1:5002 http://127.0.0.1:5001;" in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff"


def test_a_directory_without_a_page_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"index\.html is missing"):
        page_files(tmp_path)


def test_the_repositorys_page_has_what_it_loads() -> None:
    files = page_files(project_dir() / "web")
    assert {"/", "/index.html", "/app.js", "/app.css"} <= set(files)
    index = files["/index.html"][0].decode()
    assert 'src="app.js"' in index
    assert 'href="app.css"' in index
    # No script or style from elsewhere: the CSP allows 'self' only, and nothing comes from a CDN.
    assert "http" not in index.replace("http-equiv", "")
