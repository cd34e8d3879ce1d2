"""Reproduce the Lambda image's install without Docker, following its Dockerfile.

``reproduce_install`` reads ``images/Dockerfile`` and replays it in a sandbox: context ``COPY``s copy from
the repository (honouring .dockerignore), ``RUN`` lines run in ``/bin/sh`` with the stage's ``WORKDIR`` mapped
into the sandbox and ``pip``/``python`` resolving to this interpreter (pip installs the wheels of the image's
Python, which the Dockerfile names with ``--python-version``, whatever runs it), and the final stage's
``COPY --from`` lands in a directory that stands for ``${LAMBDA_TASK_ROOT}``. Nothing is restated here: change
the Dockerfile and the reproduction follows it.

The handlers are imported and invoked by :func:`run_handler`: in a bare interpreter of the image's Python
version on the task root reproduced here when this machine has one, else in the built function image itself
(``docker run``), which is where the functions really run.

The build stage's result is cached for the session, keyed by its instructions and the content it copies, so
each architecture installs once; pip may use its download cache (the Dockerfile's ``--mount=type=cache``
flag is what says so in the real build).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline_toolkit.imagefiles import (
    Dockerfile,
    DockerfileError,
    DockerIgnore,
    Instruction,
    Stage,
    context_files,
    copy_of,
    substitute,
)

REPO = Path(__file__).resolve().parents[2]
INVOKER = Path(__file__).with_name("invoke_handler.py")
LAMBDA_TASK_ROOT = "/var/task"  # set by the Lambda base image (ENV LAMBDA_TASK_ROOT)
BUILD = {"BUILDARCH": "amd64", "BUILDOS": "linux", "BUILDPLATFORM": "linux/amd64"}


def target(arch: str) -> dict[str, str]:
    """BuildKit's automatic TARGET* build args for a docker architecture (amd64, arm64)."""
    return {"TARGETARCH": arch, "TARGETOS": "linux", "TARGETPLATFORM": f"linux/{arch}"}


def image_python_version() -> str:
    """The Python version the Dockerfile installs wheels for (its ``--python-version``)."""
    found = re.findall(r"--python-version[ =](\d+\.\d+)", (REPO / "images" / "Dockerfile").read_text())
    assert len(set(found)) == 1, f"images/Dockerfile names Python versions {found}"
    return found[0]


def bare_interpreter() -> str | None:
    """A working host interpreter of the image's Python version (``IMAGE_TEST_PYTHON``, else
    ``pythonX.Y`` on PATH), if any."""
    version = image_python_version()
    if os.environ.get("IMAGE_TEST_PYTHON"):
        return os.environ["IMAGE_TEST_PYTHON"]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    # A version manager's shim may be on PATH without that version being selected: it must really run.
    if found and subprocess.run([found, "-c", ""], capture_output=True, check=False).returncode == 0:
        return found
    return None


@dataclass(frozen=True)
class ImageInstall:
    """The task root of the one function image, for one architecture (every function runs it)."""

    arch: str
    dockerfile: Dockerfile
    task_root: Path

    def size_bytes(self, subdir: str | None = None) -> int:
        base = self.task_root / subdir if subdir else self.task_root
        return sum(
            path.stat().st_size for path in base.rglob("*") if path.is_file() and not path.is_symlink()
        )


def host_path(sandbox: Path, container_path: PurePosixPath) -> Path:
    return sandbox / container_path.relative_to("/")


def _copy_into(source: Path, dest: Path, *, dest_is_dir: bool) -> None:
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True, symlinks=True)
    else:
        target = dest / source.name if dest_is_dir else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


class Replayer:
    """Replays a Dockerfile's stages into sandboxes under ``workdir``."""

    def __init__(self, workdir: Path, python: str, cache: dict[str, Path], arch: str = "amd64") -> None:
        self.workdir = workdir
        self.target = target(arch)
        self.python = python
        self.cache = cache
        self.ignore = DockerIgnore.load(REPO)
        shims = workdir / "shims"
        shims.mkdir(parents=True, exist_ok=True)
        for name, command in {
            "pip": f'"{python}" -m pip',
            "python": f'"{python}"',
            "python3": f'"{python}"',
        }.items():
            shim = shims / name
            shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
            shim.chmod(0o755)
        self.path = f"{shims}{os.pathsep}/usr/bin{os.pathsep}/bin"

    def _stage_key(self, dockerfile: Dockerfile, stage: Stage) -> str:
        digest = hashlib.sha256(f"{stage.base} {self.target}".encode())
        for ins in stage.instructions:
            digest.update(f"{ins.keyword} {sorted(ins.flags.items())} {ins.args}\n".encode())
        for copy in dockerfile.copies(stage, {"LAMBDA_TASK_ROOT": LAMBDA_TASK_ROOT}):
            if copy.from_stage is None:
                for rel in context_files(REPO, list(copy.sources), self.ignore):
                    digest.update(rel.encode() + hashlib.sha256((REPO / rel).read_bytes()).digest())
            else:
                digest.update(self.build(dockerfile, dockerfile.stage(copy.from_stage)).as_posix().encode())
        return digest.hexdigest()[:20]

    def build(self, dockerfile: Dockerfile, stage: Stage) -> Path:
        """The sandbox standing for the stage's filesystem after its instructions ran (cached)."""
        key = self._stage_key(dockerfile, stage)
        if key not in self.cache:
            sandbox = self.workdir / f"stage-{stage.name or 'final'}-{key}"
            if sandbox.exists():
                shutil.rmtree(sandbox)
            sandbox.mkdir(parents=True)
            _StageRun(self, dockerfile, sandbox).replay(stage)
            self.cache[key] = sandbox
        return self.cache[key]


class _StageRun:
    """One stage replayed into its sandbox: the instructions this project's Dockerfiles use, and no others."""

    def __init__(self, replayer: Replayer, dockerfile: Dockerfile, sandbox: Path) -> None:
        self.replayer = replayer
        self.dockerfile = dockerfile
        self.sandbox = sandbox
        self.cwd = PurePosixPath("/")
        self.values = {
            **dockerfile.global_args,
            "LAMBDA_TASK_ROOT": LAMBDA_TASK_ROOT,
            **BUILD,
            **replayer.target,
        }
        self.env = {
            "PATH": replayer.path,
            "HOME": os.environ.get("HOME", "/root"),
            **replayer.target,
            **BUILD,
        }
        for name in ("PIP_CERT", "PIP_FIND_LINKS", "PIP_DEFAULT_TIMEOUT", "SSL_CERT_FILE", "PIP_INDEX_URL"):
            if name in os.environ:
                self.env[name] = os.environ[name]

    def replay(self, stage: Stage) -> None:
        for ins in stage.instructions:
            where = f"{self.dockerfile.path}:{ins.line}"
            if ins.keyword == "WORKDIR":
                self.cwd = self.cwd / substitute(ins.args.strip(), self.values)
                host_path(self.sandbox, self.cwd).mkdir(parents=True, exist_ok=True)
            elif ins.keyword == "COPY":
                self.copy(ins)
            elif ins.keyword == "RUN":
                self.run(ins, where)
            elif ins.keyword == "ARG":
                name, _, default = ins.args.strip().partition("=")
                self.values.setdefault(name, default)
            elif ins.keyword == "ENV":
                name, _, value = ins.args.strip().partition("=")
                self.values[name] = self.env[name] = substitute(value, self.values)
            elif ins.keyword not in {"CMD", "LABEL", "ENTRYPOINT"}:
                raise DockerfileError(
                    f"{where}: {ins.keyword} is not reproduced by this test; extend replay.py"
                )

    def copy(self, ins: Instruction) -> None:
        copy = copy_of(ins, self.values)
        dest = host_path(self.sandbox, self.cwd / copy.dest)
        dest_is_dir = copy.dest.endswith("/") or len(copy.sources) > 1
        for source in copy.sources:
            if copy.from_stage is not None:
                origin = self.replayer.build(self.dockerfile, self.dockerfile.stage(copy.from_stage))
                _copy_into(host_path(origin, self.cwd / source), dest, dest_is_dir=dest_is_dir)
            elif (REPO / source).is_file():
                _copy_into(REPO / source, dest, dest_is_dir=dest_is_dir)
            else:  # a context directory: its contents, less what .dockerignore keeps out of the context
                for rel in context_files(REPO, [source], self.replayer.ignore):
                    target = dest / Path(rel).relative_to(source)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / rel, target)

    def run(self, ins: Instruction, where: str) -> None:
        unsupported = set(ins.flags) - {"mount"}  # a cache mount changes nothing in the result
        if unsupported:
            raise DockerfileError(f"{where}: RUN flags {unsupported} are not reproduced by this test")
        result = subprocess.run(
            ["/bin/sh", "-c", ins.args],
            cwd=host_path(self.sandbox, self.cwd),
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"{where}: RUN failed ({result.returncode}):\n{result.stderr[-3000:]}")


IMAGE_SIZES: dict[str, tuple[int, int]] = {}  # arch -> (task root, package) bytes


def run_handler(
    image: ImageInstall | str,
    handler: str,
    function_name: str,
    env: dict[str, str],
    workdir: Path,
    *,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Import ``handler`` (and invoke it once with ``event``, if given) in ``python -S -s -P`` with only the
    task root on PYTHONPATH, as the function's command names it; the invoker's report (``result``, ...).

    ``image`` is the task root reproduced here (run by :func:`bare_interpreter`) or a built image's reference
    (run in it, on the host network, with its own ``/var/task``)."""
    in_image = isinstance(image, str)
    task_root = LAMBDA_TASK_ROOT if in_image else str(image.task_root)  # type: ignore[union-attr]
    request: dict[str, Any] = {"task_root": task_root, "handler": handler, "function_name": function_name}
    if event is not None:
        request["event"] = event
    child_env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp" if in_image else str(workdir),
        "PYTHONPATH": task_root,
        "PYTHONDONTWRITEBYTECODE": "1",  # the task root is read-only in Lambda; keep the reproduction clean
        "LAMBDA_TASK_ROOT": task_root,
        **env,
    }
    if in_image:
        argv = ["docker", "run", "--rm", "-i", "--network", "host", "--read-only", "--tmpfs", "/tmp"]
        argv += ["--entrypoint", "python", "-v", f"{INVOKER}:/opt/invoke_handler.py:ro"]
        for name, value in child_env.items():
            argv += ["-e", f"{name}={value}"]
        argv += [str(image), "-S", "-s", "-P", "/opt/invoke_handler.py"]
        run_env: dict[str, str] | None = None
    else:
        python = bare_interpreter()
        assert python is not None, "no interpreter of the image's Python version: pass the image instead"
        argv = [python, "-S", "-s", "-P", str(INVOKER)]
        run_env = child_env
    result = subprocess.run(
        argv,
        input=json.dumps(request),
        cwd=workdir,
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    where = f"the image {image}" if in_image else "the bare interpreter"
    assert result.returncode == 0, f"{handler} failed in {where}:\n{result.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(result.stdout.rpartition("@@RESULT@@")[2])
    report["log"] = result.stdout.rpartition("@@RESULT@@")[0] + result.stderr
    assert report["site_packages_on_path"] == []
    assert report["outside_modules"] == [], f"imported from outside the task root and stdlib: {report}"
    return report
