"""A stand-in for the docker CLI, for testing pipeline_toolkit.deploy on machines without a Docker engine.

Put on PATH as ``docker`` (the test writes a wrapper). It logs every call (one JSON argv per line in
$FAKE_DOCKER_LOG) and keeps its "images" in $FAKE_DOCKER_STATE. Like a real build, each ``buildx build`` (or,
without buildx, ``build`` with DOCKER_BUILDKIT=1) makes a new image id even for unchanged content (builds are
not byte-reproducible); ``push`` uploads a manifest naming that id to ECR through boto3, so the emulator's ECR
ends up holding a distinct digest per build, as a real registry would (and the same digest for the same
image pushed to several repositories). $FAKE_DOCKER_FAIL names subcommands to fail, comma-separated
(``info``, ``buildx``, ``build``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
from pathlib import Path

import boto3


def install(directory: Path) -> Path:
    """Write a ``docker`` wrapper running this stand-in into ``directory`` (put it first on PATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "docker"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o755)
    return directory


def calls(log: Path) -> list[list[str]]:
    """Every docker command the stand-in ran, in order (the argv after ``docker``)."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def main(argv: list[str]) -> int:
    with Path(os.environ["FAKE_DOCKER_LOG"]).open("a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    state_path = Path(os.environ["FAKE_DOCKER_STATE"])
    state: dict[str, str] = json.loads(state_path.read_text()) if state_path.exists() else {}
    command = argv[0] if argv else ""
    if command and command in os.environ.get("FAKE_DOCKER_FAIL", "").split(","):
        print(f"fake docker: {command} fails as asked", file=sys.stderr)
        return 1
    if command == "info":
        print("28.2.2")
    elif argv[:2] == ["buildx", "version"]:
        print("github.com/docker/buildx v0.20.0")
    elif argv[:2] == ["buildx", "build"]:
        assert {"--provenance=false", "--sbom=false", "--platform", "--load"} <= set(argv)
        state[argv[argv.index("--tag") + 1]] = uuid.uuid4().hex
    elif command == "build":
        # BuildKit through the engine: the Dockerfile needs BuildKit, which the legacy builder is not.
        assert os.environ.get("DOCKER_BUILDKIT") == "1", "docker build without DOCKER_BUILDKIT=1"
        assert "--platform" in argv
        state[argv[argv.index("--tag") + 1]] = uuid.uuid4().hex
    elif argv[:2] == ["image", "inspect"]:
        return 0 if argv[2] in state else 1
    elif command == "login":
        assert sys.stdin.read(), "login without a password on stdin"
    elif command == "tag":
        state[argv[2]] = state[argv[1]]
    elif command == "push":
        registry_repo, _, tag = argv[1].rpartition(":")
        repository = registry_repo.partition("/")[2]
        config = hashlib.sha256(state[argv[1]].encode()).hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                       "digest": f"sha256:{config}"},
            # The emulator's ECR derives the image digest from the layer digests.
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1,
                        "digest": f"sha256:{config}"}],
        }  # fmt: skip
        boto3.client("ecr").put_image(
            repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag
        )
    else:
        print(f"fake docker: unexpected {argv}", file=sys.stderr)
        return 1
    state_path.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
