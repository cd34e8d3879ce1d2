"""The identity and api modules: what they must say (static), and the variable checks that refuse bad values.

The refusals are planned for real: a throw-away root in ``tmp_path`` uses both modules with fake credentials
and no endpoint (a plan of new resources calls no AWS API), once with sane values, then with each bad one.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from tests.terraform.markers import needs_terraform

from pipeline_toolkit.project import load_functions, stack_dir
from pipeline_toolkit.terraform import plugin_mirror

pytestmark = pytest.mark.terraform

STACK_DIR = stack_dir(Path(__file__).resolve().parents[2])
IDENTITY = (STACK_DIR / "modules" / "identity" / "main.tf").read_text(encoding="utf-8")
API = (STACK_DIR / "modules" / "api" / "main.tf").read_text(encoding="utf-8")
MAIN = (STACK_DIR / "main.tf").read_text(encoding="utf-8")


def test_the_app_client_is_public_with_srp_and_password_sign_in() -> None:
    assert re.search(r"^\s*generate_secret\s*=\s*false$", IDENTITY, flags=re.M)
    for flow in ("ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"):
        assert f'"{flow}"' in IDENTITY
    assert "ALLOW_ADMIN_USER_PASSWORD_AUTH" not in IDENTITY
    assert re.search(r"allow_admin_create_user_only\s*=\s*true", IDENTITY)


def test_every_route_is_behind_the_jwt_authorizer_and_the_proxy_integration() -> None:
    route = API[API.index('resource "aws_apigatewayv2_route" "this"') :]
    route = route[: route.index("\n}\n")]
    assert re.search(r'authorization_type\s*=\s*"JWT"', route)
    assert "authorizer_id" in route
    assert re.search(r'payload_format_version\s*=\s*"2.0"', API)
    assert re.search(r'integration_type\s*=\s*"AWS_PROXY"', API)
    assert re.search(r"issuer\s*=\s*var.jwt_issuer", API)
    assert re.search(r'name\s*=\s*"\$default"', API)
    assert "throttling_burst_limit" in API
    assert "access_log_settings" in API
    # The root gives the authorizer the pool's issuer and the client id as the audience.
    assert "jwt_issuer             = module.identity.issuer" in MAIN
    assert "jwt_audience           = [module.identity.client_id]" in MAIN


def test_the_api_routes_are_the_functions_routes() -> None:
    from pipeline.ingest.routes import openapi_json

    variables = (STACK_DIR / "modules" / "api" / "variables.tf").read_text(encoding="utf-8")
    default = re.search(r'variable "routes" \{.*?default\s*=\s*(\[.*?\])', variables, flags=re.S)
    assert default is not None
    routes = set(json.loads(default.group(1)))
    document = json.loads(openapi_json())
    assert routes == {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }


def test_the_http_function_gets_no_queue_and_only_its_own_prefixes() -> None:
    functions = load_functions(STACK_DIR.parent)
    http = [key for key, spec in functions.items() if spec.trigger == "http"]
    assert http == ["ingest-api"]
    assert set(functions["ingest-api"].grants) == {"land-uploads", "read-manifests"}
    grant = MAIN[MAIN.index('"land-uploads" = [') : MAIN.index('"read-manifests" = [')]
    resources = set(re.findall(r'"\$\{module\.bucket\["(\w+)"\]\.arn\}/([^"]*)"', grant))
    assert resources == {("landing", "uploads/*"), ("landing", "events/*")}


ROOT = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 5.100.0" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}
variable "identity" {
  type    = any
  default = {}
}
variable "api" {
  type    = any
  default = {}
}
module "identity" {
  source                        = "MODULES/identity"
  name                          = "test-pool"
  password_minimum_length       = lookup(var.identity, "password_minimum_length", 12)
  access_token_validity_minutes = lookup(var.identity, "access_token_validity_minutes", 60)
  refresh_token_validity_days   = lookup(var.identity, "refresh_token_validity_days", 30)
  domain_prefix                 = lookup(var.identity, "domain_prefix", null)
}
module "api" {
  source              = "MODULES/api"
  name                = "test-api"
  function_arn        = "arn:aws:lambda:us-east-1:123456789012:function:test-ingest"
  function_invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/x/invocations"
  jwt_issuer          = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x"
  jwt_audience        = ["client"]
  cors_allow_origins  = lookup(var.api, "cors_allow_origins", ["https://upload.example.com"])
}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ingest-modules")
    (directory / "main.tf").write_text(ROOT.replace("MODULES", str(STACK_DIR / "modules")))
    mirror = plugin_mirror()
    command = ["terraform", "init", "-input=false", "-no-color"]
    if mirror is not None:
        command.append(f"-plugin-dir={mirror}")
    subprocess.run(command, cwd=directory, check=True, capture_output=True, text=True)
    return directory


def _plan(root: Path, variables: dict[str, object]) -> subprocess.CompletedProcess[str]:
    (root / "terraform.tfvars.json").write_text(json.dumps(variables))
    return subprocess.run(
        ["terraform", "plan", "-input=false", "-no-color", "-refresh=false", "-lock=false"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


@needs_terraform
def test_sane_values_plan_and_bad_ones_are_refused(root: Path) -> None:
    planned = _plan(root, {})
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert 'module.api.aws_apigatewayv2_route.this["GET /files/{upload_id}"]' in planned.stdout
    for variables, message in (
        (
            {"identity": {"password_minimum_length": 6}},
            "password_minimum_length must be a whole number from 8",
        ),
        ({"identity": {"access_token_validity_minutes": 2}}, "access_token_validity_minutes must be from 5"),
        (
            {"identity": {"refresh_token_validity_days": 365}},
            "refresh_token_validity_days must be from 1 to 90",
        ),
        ({"identity": {"domain_prefix": "my-aws-login"}}, "must not contain aws"),
        ({"api": {"cors_allow_origins": ["*"]}}, "is refused"),
        ({"api": {"cors_allow_origins": ["https://upload.example.com/page"]}}, "without a path"),
    ):
        refused = _plan(root, variables)
        output = " ".join((refused.stdout + refused.stderr).split())
        assert refused.returncode != 0, f"{variables} was not refused"
        assert message in output, output
