"""The project checkout the toolkit works on, and the one list of functions in it.

The toolkit is installed as a package, so it never finds the repository by walking up from its own file: the
project directory is ``PIPELINE_PROJECT_DIR`` when set, else the working directory or the nearest parent of it
that holds ``terraform/functions.json`` (so ``pipeline`` works from any folder of a checkout).

``terraform/functions.json`` names every function: its key, handler, trigger, environment references, grants
and settings. Terraform reads it with ``jsondecode`` and so do the toolkit and the tests, so adding a function
is one entry there plus its handler module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PROJECT_DIR_ENV = "PIPELINE_PROJECT_DIR"
FUNCTIONS_FILE = Path("terraform") / "functions.json"
#: What a function may be triggered by: the landing bucket's S3 events (through the SNS fan-out), a queue
#: of its own that other functions send work to (the parts of big files), or API Gateway's HTTP API ("http":
#: no queue, no event source mapping, no dead-letter queue; the local runtime starts no worker for it).
TRIGGERS = frozenset({"landing-events", "parts", "http"})
#: The triggers that give a function a queue of its own.
QUEUED_TRIGGERS = frozenset({"landing-events", "parts"})


class ProjectError(RuntimeError):
    """No project checkout was found, or its function list is malformed."""


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One entry of ``terraform/functions.json``."""

    key: str
    handler: str
    trigger: str
    manifest_stage: str
    description: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    grants: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_queue(self) -> bool:
        return self.trigger in QUEUED_TRIGGERS


def project_dir(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The project checkout: ``$PIPELINE_PROJECT_DIR``, else the working directory or a parent of it."""
    env = os.environ if environ is None else environ
    named = env.get(PROJECT_DIR_ENV, "")
    if named:
        path = Path(named).resolve()
        if not (path / FUNCTIONS_FILE).is_file():
            raise ProjectError(f"{PROJECT_DIR_ENV}={named} is not a project checkout (no {FUNCTIONS_FILE})")
        return path
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / FUNCTIONS_FILE).is_file():
            return candidate
    raise ProjectError(
        f"no project checkout here: neither {start} nor a parent holds {FUNCTIONS_FILE}; "
        f"run from the repository or set {PROJECT_DIR_ENV}"
    )


def stack_dir(root: Path | None = None) -> Path:
    """The root Terraform stack of the project."""
    return (root or project_dir()) / "terraform"


def samples_dir(root: Path | None = None) -> Path:
    """The demo's sample files."""
    return (root or project_dir()) / "samples"


def parse_functions(text: str, source: str = str(FUNCTIONS_FILE)) -> dict[str, FunctionSpec]:
    """The function list from the text of ``functions.json``, checked for what every consumer relies on."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{source} is not JSON: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise ProjectError(f"{source} must be a non-empty JSON object: function key -> definition")
    functions: dict[str, FunctionSpec] = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict):
            raise ProjectError(f"{source}: {key!r} must be an object")
        missing = [name for name in ("handler", "trigger", "manifest_stage") if name not in entry]
        if missing:
            raise ProjectError(f"{source}: {key!r} lacks {', '.join(missing)}")
        if entry["trigger"] not in TRIGGERS:
            raise ProjectError(
                f"{source}: {key!r} has trigger {entry['trigger']!r}; expected one of {sorted(TRIGGERS)}"
            )
        functions[key] = FunctionSpec(
            key=key,
            handler=str(entry["handler"]),
            trigger=str(entry["trigger"]),
            manifest_stage=str(entry["manifest_stage"]),
            description=str(entry.get("description", "")),
            environment=dict(entry.get("environment", {})),
            grants=tuple(entry.get("grants", ())),
            settings=dict(entry.get("settings", {})),
        )
    return functions


@cache
def _load(path: Path) -> dict[str, FunctionSpec]:
    return parse_functions(path.read_text(encoding="utf-8"), str(path))


def load_functions(root: Path | None = None) -> dict[str, FunctionSpec]:
    """The project's functions, by key, in the file's order."""
    return dict(_load((root or project_dir()) / FUNCTIONS_FILE))
