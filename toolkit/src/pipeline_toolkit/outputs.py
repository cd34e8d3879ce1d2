"""The deployed stack's Terraform outputs, and the session file that lets other commands find a running stack.

``pipeline local up`` and ``make demo`` write ``.local/session.json`` (endpoint, region, outputs, pid, and the
local gateway's URL once it serves the ingest API) while they run, so that ``pipeline drop``, ``status`` and
``send`` in another terminal talk to the same emulator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline_toolkit.clients import emulator_environment

DEFAULT_STATE_DIR = Path(".local")
SESSION_FILE = "session.json"


class NoSessionError(RuntimeError):
    """No running local stack was found."""


@dataclass(frozen=True, slots=True)
class QueueOutputs:
    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


@dataclass(frozen=True, slots=True)
class StackOutputs:
    """The root module's outputs that the local tools use (the contract in ``terraform/outputs.tf``)."""

    landing_bucket: str
    datalake_bucket: str
    quarantine_bucket: str
    table_name: str
    region: str
    topic_arn: str = ""
    functions: dict[str, str] = field(default_factory=dict)
    queues: dict[str, QueueOutputs] = field(default_factory=dict)
    # The ingest API's identity and address (empty when the stack has none).
    user_pool_id: str = ""
    user_pool_client_id: str = ""
    api_endpoint: str = ""

    @classmethod
    def from_terraform(cls, outputs: Mapping[str, Any]) -> StackOutputs:
        """From ``terraform output -json`` (``{"name": {"value": ...}}``) or from plain values."""
        values = {
            name: item["value"] if isinstance(item, Mapping) and "value" in item else item
            for name, item in outputs.items()
        }
        return cls(
            landing_bucket=values["landing_bucket"],
            datalake_bucket=values["datalake_bucket"],
            quarantine_bucket=values["quarantine_bucket"],
            table_name=values["table_name"],
            region=values.get("region") or "us-east-1",
            topic_arn=values.get("topic_arn", ""),
            functions=dict(values.get("functions") or {}),
            queues={
                key: QueueOutputs(**{name: queue[name] for name in ("url", "arn", "dlq_url", "dlq_arn")})
                for key, queue in (values.get("queues") or {}).items()
            },
            user_pool_id=values.get("user_pool_id") or "",
            user_pool_client_id=values.get("user_pool_client_id") or "",
            api_endpoint=values.get("api_endpoint") or "",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Session:
    """A running local stack: where its emulator listens and what was deployed to it."""

    endpoint_url: str
    region: str
    outputs: StackOutputs
    pid: int
    # The local gateway serving the ingest API on 127.0.0.1 (empty until it serves, or with --no-api).
    gateway_url: str = ""

    def environment(self) -> dict[str, str]:
        """Variables that aim the ``aws`` CLI, boto3 and Terraform at this stack, ready to export."""
        # The emulator's "unset" markers (empty values) are left out: exported, they would name a profile.
        variables = emulator_environment(self.endpoint_url, self.region)
        return {name: value for name, value in variables.items() if value}

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / SESSION_FILE
        document = {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "outputs": self.outputs.to_dict(),
            "pid": self.pid,
            "gateway_url": self.gateway_url,
        }
        path.write_text(json.dumps(document, indent=2))
        return path

    @classmethod
    def load(cls, state_dir: Path) -> Session:
        path = state_dir / SESSION_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise NoSessionError(
                f"no local stack is running ({path} not found): start one with `pipeline local up`"
            ) from None
        session = cls(
            endpoint_url=raw["endpoint_url"],
            region=raw["region"],
            outputs=StackOutputs.from_terraform(raw["outputs"]),
            pid=int(raw["pid"]),
            gateway_url=raw.get("gateway_url") or "",
        )
        if not _alive(session.pid):
            raise NoSessionError(
                f"the local stack recorded in {path} (pid {session.pid}) is gone: "
                "start one with `pipeline local up`"
            )
        return session

    @staticmethod
    def remove(state_dir: Path) -> None:
        (state_dir / SESSION_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
