"""The stack deployed twice in one account, in two regions: the globally named resources (S3 buckets, IAM
roles) do not collide. Proven by applying those resources, alone, to the session's emulator in a second
region beside the session's stack, and by the collision the former naming would have met there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_toolkit.project import load_functions, stack_dir
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform, TerraformError

pytestmark = pytest.mark.terraform

FUNCTION_KEYS = tuple(load_functions(Path(__file__).resolve().parents[2]))
BUCKETS = ("landing", "datalake", "quarantine")
SECOND_REGION = "eu-west-1"
#: Only what is named globally: buckets (S3's namespace spans accounts and regions) and roles (IAM's spans
#: regions). Everything else is regional, and applying it all would cost minutes of SQS waits.
GLOBAL_TARGETS = (
    *(f'module.bucket["{bucket}"].aws_s3_bucket.this' for bucket in BUCKETS),
    *(f'module.function["{key}"].aws_iam_role.this' for key in FUNCTION_KEYS),
    "module.catalog.module.results_bucket.aws_s3_bucket.this",  # Athena's results
)


def _names(terraform: Terraform) -> tuple[set[str], set[str]]:
    """The bucket and role names its state holds."""
    assert terraform.state is not None
    state = json.loads(terraform.state.read_text(encoding="utf-8"))
    buckets, roles = set(), set()
    for resource in state.get("resources", []):
        for instance in resource.get("instances", []):
            if resource["type"] == "aws_s3_bucket":
                buckets.add(instance["attributes"]["bucket"])
            elif resource["type"] == "aws_iam_role":
                roles.add(instance["attributes"]["name"])
    return buckets, roles


@pytest.fixture
def stack_in(deployed_stack: Any, tmp_path: Path) -> Iterator[Any]:
    """A factory: a fresh state of the root stack aimed at the session's emulator in a given region; whatever
    it applied is destroyed at the end."""
    applied: list[tuple[Terraform, dict[str, Any]]] = []

    def make(name: str, region: str) -> Terraform:
        terraform = Terraform(
            stack_dir(),
            data_dir=tmp_path / name / "data",
            state=tmp_path / name / "terraform.tfstate",
            env={**deployed_stack.env, "AWS_REGION": region, "AWS_DEFAULT_REGION": region},
        )
        terraform.init()
        return terraform

    def apply(terraform: Terraform, variables: dict[str, Any]) -> None:
        applied.append((terraform, variables))
        terraform.apply(variables, targets=GLOBAL_TARGETS)

    yield make, apply
    for terraform, variables in reversed(applied):
        terraform.destroy(variables, targets=GLOBAL_TARGETS)


def test_a_second_region_of_the_account_gets_bucket_and_role_names_of_its_own(
    deployed_stack: Any, stack_in: Any
) -> None:
    make, apply = stack_in
    account = deployed_stack.client("sts").get_caller_identity()["Account"]
    first_region = deployed_stack.outputs["region"]
    assert first_region != SECOND_REGION
    # The defaults, as on AWS: no bucket_name_suffix (None), so <account id>-<region>.
    variables = {**EMBEDDED_VARIABLES, "environment": "regions", "bucket_name_suffix": None}

    names = {}
    for region in (first_region, SECOND_REGION):
        terraform = make(region, region)
        apply(
            terraform, variables
        )  # the second would fail with BucketAlreadyOwnedByYou / EntityAlreadyExists
        names[region] = _names(terraform)
        buckets, roles = names[region]
        assert buckets == {f"pipeline-regions-{bucket}-{account}-{region}" for bucket in (*BUCKETS, "athena")}
        assert roles == {f"pipeline-regions-{key}-{region}" for key in FUNCTION_KEYS}
    assert not names[first_region][0] & names[SECOND_REGION][0]
    assert not names[first_region][1] & names[SECOND_REGION][1]


def test_the_emulator_refuses_a_bucket_name_another_region_holds(deployed_stack: Any, stack_in: Any) -> None:
    """The check above has teeth: the former default (no suffix) in a second region meets the session's
    buckets, as it would on AWS, and the apply fails halfway."""
    make, apply = stack_in
    terraform = make("collision", SECOND_REGION)
    variables = {
        **deployed_stack.variables,
        "bucket_name_suffix": "",
    }  # the session's names, in another region
    with pytest.raises(TerraformError) as refused:
        apply(terraform, variables)
    assert "BucketAlreadyOwnedByYou" in refused.value.output or "BucketAlreadyExists" in refused.value.output
