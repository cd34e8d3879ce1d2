"""The published OpenAPI document (docs/openapi.json) is the one Powertools generates from the routes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.ingest.routes import openapi_json
from pipeline_toolkit import openapi

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_document_is_the_generated_one() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == openapi_json(), (
        "docs/openapi.json is stale: run `make openapi`"
    )


def test_the_document_describes_the_four_routes_and_their_errors() -> None:
    document = json.loads(openapi_json())
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert operations == {
        ("post", "/uploads"),
        ("post", "/events/{dataset}"),
        ("get", "/files"),
        ("get", "/files/{upload_id}"),
    }
    responses = document["paths"]["/events/{dataset}"]["post"]["responses"]
    assert {"202", "401", "404", "409", "413", "415", "422"} <= set(responses)
    assert document["paths"]["/files/{upload_id}"]["get"]["responses"].keys() >= {"200", "403", "404"}
    assert document["components"]["securitySchemes"]["cognito"]["scheme"] == "bearer"


def test_the_check_fails_on_a_stale_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "terraform").mkdir()
    (tmp_path / "terraform" / "functions.json").write_text("{}")
    (tmp_path / "docs").mkdir()
    monkeypatch.setenv("PIPELINE_PROJECT_DIR", str(tmp_path))
    (tmp_path / "docs" / "openapi.json").write_text("{}\n")
    assert openapi.main(["--check"]) == 1
    assert openapi.main([]) == 0
    assert openapi.main(["--check"]) == 0
