"""What the Lambda image build is made of: Dockerfile instructions, .dockerignore rules, content hashes.

Every function runs the same image, built from ``images/Dockerfile``; which handler it runs is set per
function by Terraform (``image_config.command``, from ``terraform/functions.json``), not by the image. Shared
by :mod:`pipeline_toolkit.deploy` (the image tag is a hash of exactly what goes into the build) and by the
image tests (which reproduce the Dockerfile's install without Docker). Standard library only.

The Dockerfile reader understands what these Dockerfiles use: comments and parser directives, line
continuations, ``ARG`` defaults, build stages (``FROM … AS name``), instruction flags (``--from=…``,
``--mount=…``, ``--platform=…``) and the exec (JSON) form of ``CMD``. The .dockerignore matcher follows
Docker's rules: patterns match whole paths from the context root (``**`` spans directories), a later
pattern overrides an earlier one, ``!`` re-includes, and a path is excluded when it or a parent matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

ARCHITECTURES = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}
IMAGES_DIR = "images"
DOCKERFILE = "Dockerfile"

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(ValueError):
    """A Dockerfile this project cannot read (or one that breaks its conventions)."""


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    flags: dict[str, str]  # --from=build -> {"from": "build"}
    args: str  # the rest of the line, continuations joined, flags removed
    line: int  # 1-based line where the instruction starts


@dataclass(slots=True)
class Stage:
    base: str  # the image reference, ARGs substituted
    name: str | None
    platform: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def workdir(self) -> PurePosixPath:
        current = PurePosixPath("/")
        for ins in self.instructions:
            if ins.keyword == "WORKDIR":
                current = current / ins.args.strip()
        return current


@dataclass(frozen=True, slots=True)
class Copy:
    sources: tuple[str, ...]
    dest: str
    from_stage: str | None


@dataclass(slots=True)
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise DockerfileError(f"{self.path}: no build stage named {name!r}")

    def cmd(self) -> list[str]:
        """The final stage's CMD, which must use the exec (JSON array) form."""
        cmds = [ins for ins in self.final.instructions if ins.keyword == "CMD"]
        if not cmds:
            raise DockerfileError(f"{self.path}: the final stage has no CMD")
        raw = cmds[-1].args.strip()
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise DockerfileError(f"{self.path}: CMD must be a JSON array (exec form), got {raw!r}") from None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise DockerfileError(f"{self.path}: CMD must be a JSON array of strings, got {raw!r}")
        return value

    def copies(self, stage: Stage, env: Mapping[str, str] | None = None) -> list[Copy]:
        """The stage's COPY/ADD instructions, with ARG defaults and ``env`` substituted into paths."""
        values = {**self.global_args, **(env or {})}
        return [copy_of(ins, values) for ins in stage.instructions if ins.keyword in {"COPY", "ADD"}]

    def context_sources(self) -> list[str]:
        """Every path the build reads from the build context (COPY/ADD without --from), in any stage."""
        sources: list[str] = []
        for stage in self.stages:
            for ins in stage.instructions:
                if ins.keyword in {"COPY", "ADD"} and "from" not in ins.flags:
                    for operand in _operands(ins)[:-1]:
                        source = substitute(operand, self.global_args)
                        if source not in sources:
                            sources.append(source)
        return sources


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace ``$NAME`` and ``${NAME}`` with their values; an unknown name is an error, not ''."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name not in values:
            raise DockerfileError(f"no value for ${{{name}}} in {text!r}")
        return values[name]

    return _VARIABLE.sub(replace, text)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Instructions with continuations joined; comment lines (also inside continuations) dropped."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        yield start, " ".join(part for part in buffer if part)
        buffer = []
    if buffer:
        yield start, " ".join(part for part in buffer if part)


def _split_flags(rest: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        token, _, remainder = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name] = value
        rest = remainder.lstrip()
    return flags, rest


def _operands(ins: Instruction) -> list[str]:
    args = ins.args.strip()
    return [str(item) for item in json.loads(args)] if args.startswith("[") else args.split()


def copy_of(ins: Instruction, values: Mapping[str, str]) -> Copy:
    """A COPY/ADD instruction's sources and destination, variables substituted."""
    parts = [substitute(part, values) for part in _operands(ins)]
    if len(parts) < 2:
        raise DockerfileError(f"line {ins.line}: {ins.keyword} needs a source and a destination")
    return Copy(sources=tuple(parts[:-1]), dest=parts[-1], from_stage=ins.flags.get("from"))


def parse_dockerfile(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        flags, args = _split_flags(rest.strip()) if keyword in {"FROM", "RUN", "COPY", "ADD"} else ({}, rest)
        instruction = Instruction(keyword=keyword, flags=flags, args=args, line=line)
        if keyword == "FROM":
            words = args.split()
            base = substitute(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name, platform=flags.get("platform")))
        elif not stages:
            if keyword != "ARG":
                raise DockerfileError(f"{path}:{line}: only ARG may come before the first FROM")
            name, _, default = args.strip().partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(instruction)
    if not stages:
        raise DockerfileError(f"{path}: no FROM instruction")
    return Dockerfile(path=path, global_args=global_args, stages=stages)


def dockerfile_path(root: Path) -> Path:
    """The one Dockerfile of every function's image."""
    return root / IMAGES_DIR / DOCKERFILE


# --- .dockerignore --------------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^"):
                    body = "!" + body[1:]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True, slots=True)
class DockerIgnore:
    rules: tuple[tuple[bool, re.Pattern[str]], ...]  # (re-include?, pattern)

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            cleaned = os.path.normpath(line.lstrip("/")).replace(os.sep, "/")
            if cleaned == ".":
                continue
            rules.append((negate, _pattern_regex(cleaned)))
        return cls(tuple(rules))

    @classmethod
    def load(cls, root: Path) -> DockerIgnore:
        path = root / ".dockerignore"
        return cls.parse(path.read_text(encoding="utf-8")) if path.exists() else cls(())

    def excluded(self, relpath: str) -> bool:
        parts = PurePosixPath(relpath).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for negate, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                result = not negate
        return result


def context_files(root: Path, sources: list[str], ignore: DockerIgnore) -> list[str]:
    """The files (relative POSIX paths, sorted) that sending these COPY sources puts into the build."""
    files: set[str] = set()
    for source in sources:
        base = root / source
        if not base.exists():
            raise DockerfileError(f"COPY source {source!r} does not exist under {root}")
        candidates = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        for path in candidates:
            rel = path.relative_to(root).as_posix()
            if not ignore.excluded(rel):
                files.add(rel)
    return sorted(files)


def content_hash(root: Path, arch: str, base_image: str | None = None) -> str:
    """sha256 of what decides the image: architecture, Dockerfile, the context files it copies, and the base
    image when it is not the Dockerfile's default (a build on the stand-in base never shares a tag with one on
    AWS's)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    path = dockerfile_path(root)
    dockerfile = parse_dockerfile(path)
    digest = hashlib.sha256()
    digest.update(f"arch\0{arch}\0".encode())
    digest.update(b"Dockerfile\0" + path.read_bytes() + b"\0")
    if base_image:
        digest.update(f"base\0{base_image}\0".encode())
    for rel in context_files(root, dockerfile.context_sources(), DockerIgnore.load(root)):
        digest.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).digest())
    return digest.hexdigest()


def image_tag(root: Path, arch: str, base_image: str | None = None) -> str:
    """The tag the image is pushed under (to every function's repository): same content and architecture,
    same tag."""
    return f"{arch}-{content_hash(root, arch, base_image)[:24]}"
