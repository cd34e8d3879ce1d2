"""The upload page's hosting (terraform/modules/site) and its wiring in the root stack.

moto cannot apply the CloudFront part (no CreateResponseHeadersPolicy; a distribution's read-back loses its
origin's OAC id, so a second plan is never clean: terraform/modules/site/README.md), so:

- the module is planned alone in a throw-away root (fake credentials, no endpoint: a plan of new resources
  calls no AWS API) and its plan read with ``terraform show -json``: the origin access control, the bucket
  policy's principal and ``AWS:SourceArn`` condition, the security headers, the files and config.json;
- the same root applies, against the session's emulator, what moto does serve: the private bucket with its
  policy document merged beside the TLS-only deny (for a stand-in distribution ARN), the page's files and
  config.json (``-target``), then plans again (no changes) and destroys;
- the root stack is planned with the page on, over the session's one apply (which leaves it off, as the
  embedded target does): the page's origin joins the API's and the landing bucket's CORS, with no cycle;
- the session's apply itself carries a user-given page origin (``SESSION_PAGE_ORIGIN``): the landing bucket's
  CORS rule and the API's CORS are checked there, and the no-drift test covers them.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.terraform.markers import needs_terraform

from pipeline_toolkit.emulator import Emulator
from pipeline_toolkit.project import stack_dir
from pipeline_toolkit.terraform import EMBEDDED_VARIABLES, Terraform, plugin_mirror

pytestmark = pytest.mark.terraform

STACK_DIR = stack_dir(Path(__file__).resolve().parents[2])
MODULE = STACK_DIR / "modules" / "site"
FIXTURE = Path(__file__).parent / "fixtures" / "upload-page"
SITE = "module.site[0]"

API_ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com"
CONNECT_SRC = [
    "https://abc123.execute-api.us-east-1.amazonaws.com",
    "https://cognito-idp.us-east-1.amazonaws.com",
    "https://test-landing.s3.us-east-1.amazonaws.com",
]
#: What the emulator can hold: the page's files and config.json (with the page's bucket they need), and the
#: stand-alone bucket with a merged policy document and CORS rules. Not the distribution nor its policies.
APPLIED = ("module.site.aws_s3_object.file", "module.site.aws_s3_object.config", "module.bucket")
STAND_IN_DISTRIBUTION = "arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE"

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
  max_retries                 = 2
}
variable "site" {
  type    = any
  default = {}
}
module "site" {
  source              = "MODULES/site"
  name                = "test-upload-page"
  bucket_name         = "test-upload-page-bucket"
  force_destroy       = true
  source_dir          = lookup(var.site, "source_dir", "FIXTURE")
  region              = "us-east-1"
  user_pool_id        = "us-east-1_pool"
  user_pool_client_id = "client0123456789"
  cognito_endpoint    = "https://cognito-idp.us-east-1.amazonaws.com/"
  api_endpoint        = "API_ENDPOINT"
  max_upload_bytes    = lookup(var.site, "max_upload_bytes", 104857600)
  connect_src         = CONNECT_SRC
  price_class         = lookup(var.site, "price_class", "PriceClass_100")
  aliases             = lookup(var.site, "aliases", [])
  acm_certificate_arn = lookup(var.site, "acm_certificate_arn", null)
}
# What moto can hold: the module's bucket with the same kind of document the module merges in (for a stand-in
# distribution), beside the TLS-only deny.
module "bucket" {
  source        = "MODULES/bucket"
  name          = "test-upload-page-policy"
  force_destroy = true
  policy_documents = [jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "CloudFrontReadsThePage"
      Effect    = "Allow"
      Principal = { Service = "cloudfront.amazonaws.com" }
      Action    = "s3:GetObject"
      Resource  = "arn:aws:s3:::test-upload-page-policy/*"
      Condition = { StringEquals = { "AWS:SourceArn" = "STAND_IN" } }
    }]
  })]
  cors_rules = [{
    allowed_origins = ["https://page.example.com"]
    allowed_methods = ["POST"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }]
}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("site-module")
    text = (
        ROOT.replace("MODULES", str(STACK_DIR / "modules"))
        .replace('"FIXTURE"', json.dumps(str(FIXTURE)))
        .replace("API_ENDPOINT", API_ENDPOINT)
        .replace("CONNECT_SRC", json.dumps(CONNECT_SRC))
        .replace("STAND_IN", STAND_IN_DISTRIBUTION)
    )
    (directory / "main.tf").write_text(text, encoding="utf-8")
    mirror = plugin_mirror()
    command = ["terraform", "init", "-input=false", "-no-color"]
    if mirror is not None:
        command.append(f"-plugin-dir={mirror}")
    subprocess.run(command, cwd=directory, check=True, capture_output=True, text=True)
    return directory


PLAN = ("terraform", "plan", "-input=false", "-no-color", "-refresh=false", "-lock=false")


def _plan(root: Path, site: dict[str, Any], name: str) -> dict[str, Any]:
    """The module's plan with these inputs, as ``terraform show -json`` gives it."""
    variables = root / f"{name}.tfvars.json"
    variables.write_text(json.dumps({"site": site}), encoding="utf-8")
    planfile = root / f"{name}.tfplan"
    planned = subprocess.run(
        [*PLAN, f"-var-file={variables}", f"-out={planfile}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert planned.returncode == 0, planned.stdout + planned.stderr
    shown = subprocess.run(
        ["terraform", "show", "-json", "-no-color", str(planfile)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def _after(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {change["address"]: change["change"]["after"] or {} for change in document["resource_changes"]}


def _configured(document: dict[str, Any], module: str, address: str) -> dict[str, Any]:
    """The configuration (expressions, references) of a resource of a module call of the root."""
    resources = document["configuration"]["root_module"]["module_calls"][module]["module"]["resources"]
    (found,) = [resource for resource in resources if resource["address"] == address]
    expressions: dict[str, Any] = found["expressions"]
    return expressions


@pytest.fixture(scope="module")
def planned(root: Path) -> dict[str, Any]:
    return _plan(root, {}, "default")


@needs_terraform
def test_cloudfront_reads_the_private_bucket_through_an_origin_access_control(
    planned: dict[str, Any],
) -> None:
    after = _after(planned)
    oac = after["module.site.aws_cloudfront_origin_access_control.this"]
    assert (oac["origin_access_control_origin_type"], oac["signing_behavior"], oac["signing_protocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    distribution = _configured(planned, "site", "aws_cloudfront_distribution.this")
    (origin,) = distribution["origin"]
    assert "aws_cloudfront_origin_access_control.this.id" in origin["origin_access_control_id"]["references"]
    assert "module.bucket.regional_domain_name" in origin["domain_name"]["references"]
    # No public website endpoint, no ACLs, every public access setting blocked.
    block = after["module.site.module.bucket.aws_s3_bucket_public_access_block.this"]
    assert all(block[name] for name in ("block_public_acls", "block_public_policy", "ignore_public_acls"))
    assert block["restrict_public_buckets"] is True
    assert not any(
        change["type"] == "aws_s3_bucket_website_configuration" for change in planned["resource_changes"]
    )
    ownership = after["module.site.module.bucket.aws_s3_bucket_ownership_controls.this"]
    assert ownership["rule"] == [{"object_ownership": "BucketOwnerEnforced"}]
    encryption = after["module.site.module.bucket.aws_s3_bucket_server_side_encryption_configuration.this"]
    assert encryption["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    versioning = after["module.site.module.bucket.aws_s3_bucket_versioning.this"]
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"


@needs_terraform
def test_the_bucket_admits_only_cloudfront_for_this_distribution(planned: dict[str, Any]) -> None:
    statement = _configured(planned, "site", "data.aws_iam_policy_document.cloudfront_read")["statement"]
    (grant,) = statement
    assert grant["effect"]["constant_value"] == "Allow"
    assert grant["actions"]["constant_value"] == ["s3:GetObject"]
    assert "module.bucket.objects_arn" in grant["resources"]["references"]
    (principal,) = grant["principals"]
    assert principal["type"]["constant_value"] == "Service"
    assert principal["identifiers"]["constant_value"] == ["cloudfront.amazonaws.com"]
    (condition,) = grant["condition"]
    assert condition["test"]["constant_value"] == "StringEquals"
    assert condition["variable"]["constant_value"] == "AWS:SourceArn"
    assert "aws_cloudfront_distribution.this.arn" in condition["values"]["references"]
    # The bucket module puts that document in its one policy, beside the TLS-only deny.
    calls = planned["configuration"]["root_module"]["module_calls"]["site"]["module"]["module_calls"]
    documents = calls["bucket"]["expressions"]["policy_documents"]["references"]
    assert "data.aws_iam_policy_document.cloudfront_read.json" in documents
    bucket_policy = calls["bucket"]["module"]["resources"]
    (document,) = [r for r in bucket_policy if r["address"] == "data.aws_iam_policy_document.this"]
    assert "var.policy_documents" in document["expressions"]["source_policy_documents"]["references"]


@needs_terraform
def test_the_page_is_served_with_strict_security_headers(planned: dict[str, Any]) -> None:
    policy = _after(planned)["module.site.aws_cloudfront_response_headers_policy.security"]
    (headers,) = policy["security_headers_config"]
    (csp,) = headers["content_security_policy"]
    assert csp["override"] is True
    directives = dict(
        [*d.split(" ", 1), ""][:2]
        for d in (part.strip() for part in csp["content_security_policy"].split(";"))
    )
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"].split() == ["'self'", *CONNECT_SRC]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert "unsafe-inline" not in csp["content_security_policy"]
    assert "unsafe-eval" not in csp["content_security_policy"]
    (hsts,) = headers["strict_transport_security"]
    assert hsts["access_control_max_age_sec"] >= 31536000
    assert hsts["include_subdomains"] is True
    assert hsts["override"] is True
    assert headers["content_type_options"] == [{"override": True}]
    assert headers["frame_options"] == [{"frame_option": "DENY", "override": True}]
    assert headers["referrer_policy"] == [
        {"override": True, "referrer_policy": "strict-origin-when-cross-origin"}
    ]
    distribution = _configured(planned, "site", "aws_cloudfront_distribution.this")
    (behaviour,) = distribution["default_cache_behavior"]
    references = behaviour["response_headers_policy_id"]["references"]
    assert "aws_cloudfront_response_headers_policy.security.id" in references


@needs_terraform
def test_https_only_index_html_and_the_default_certificate_unless_one_is_given(
    root: Path, planned: dict[str, Any]
) -> None:
    distribution = _after(planned)["module.site.aws_cloudfront_distribution.this"]
    assert distribution["default_root_object"] == "index.html"
    assert distribution["price_class"] == "PriceClass_100"
    (behaviour,) = distribution["default_cache_behavior"]
    assert behaviour["viewer_protocol_policy"] == "redirect-to-https"
    assert behaviour["allowed_methods"] == ["GET", "HEAD"]
    (certificate,) = distribution["viewer_certificate"]
    assert certificate["cloudfront_default_certificate"] is True
    assert distribution["aliases"] in (None, [])

    certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    custom = _plan(
        root,
        {
            "aliases": ["upload.example.com"],
            "acm_certificate_arn": certificate_arn,
            "price_class": "PriceClass_All",
        },
        "custom",
    )
    distribution = _after(custom)["module.site.aws_cloudfront_distribution.this"]
    (certificate,) = distribution["viewer_certificate"]
    assert certificate["cloudfront_default_certificate"] is False
    assert certificate["acm_certificate_arn"] == certificate_arn
    assert certificate["minimum_protocol_version"] == "TLSv1.2_2021"
    assert certificate["ssl_support_method"] == "sni-only"
    assert distribution["aliases"] == ["upload.example.com"]
    assert distribution["price_class"] == "PriceClass_All"
    origin = custom["configuration"]["root_module"]["module_calls"]["site"]["module"]["outputs"]["origin"]
    assert "local.origin" in origin["expression"]["references"]


@needs_terraform
def test_a_name_without_its_certificate_is_refused(root: Path) -> None:
    variables = root / "refused.tfvars.json"
    variables.write_text(json.dumps({"site": {"aliases": ["upload.example.com"]}}), encoding="utf-8")
    refused = subprocess.run(
        [
            "terraform",
            "plan",
            "-input=false",
            "-no-color",
            "-refresh=false",
            "-lock=false",
            f"-var-file={variables}",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "aliases and acm_certificate_arn go together" in " ".join(
        (refused.stdout + refused.stderr).split()
    )


@needs_terraform
def test_every_file_is_uploaded_with_its_type_and_hash_and_config_json_is_generated(
    planned: dict[str, Any],
) -> None:
    after = _after(planned)
    files = {
        address.split('"')[1]: values
        for address, values in after.items()
        if address.startswith("module.site.aws_s3_object.file[")
    }
    # The fixture's own config.json is left out: the generated one is the page's configuration.
    assert set(files) == {"index.html", "app.js", "app.css"}
    assert files["index.html"]["content_type"] == "text/html; charset=utf-8"
    assert files["app.js"]["content_type"] == "text/javascript; charset=utf-8"
    assert files["app.css"]["content_type"] == "text/css; charset=utf-8"
    for name, values in files.items():
        assert values["source"] == str(FIXTURE / name)
        assert re.fullmatch(r"[0-9a-f]{32}", values["source_hash"]), name  # a changed file is uploaded again
        assert values["cache_control"] == "no-cache"
    config = after["module.site.aws_s3_object.config"]
    assert config["key"] == "config.json"
    assert config["content_type"] == "application/json"
    assert json.loads(config["content"]) == {
        "region": "us-east-1",
        "userPoolId": "us-east-1_pool",
        "userPoolClientId": "client0123456789",
        "cognitoEndpoint": "https://cognito-idp.us-east-1.amazonaws.com/",
        "apiEndpoint": API_ENDPOINT,
        "maxUploadBytes": 104857600,
    }


@needs_terraform
def test_an_absent_page_directory_uploads_config_json_alone(root: Path, tmp_path: Path) -> None:
    for name, directory in (("absent", tmp_path / "no-such-dir"), ("empty", tmp_path)):
        document = _plan(root, {"source_dir": str(directory), "max_upload_bytes": None}, name)
        objects = [
            change["address"] for change in document["resource_changes"] if change["type"] == "aws_s3_object"
        ]
        assert objects == ["module.site.aws_s3_object.config"], name
        content = json.loads(_after(document)["module.site.aws_s3_object.config"]["content"])
        assert "maxUploadBytes" not in content  # not known: left out, not null
        assert set(content) == {"region", "userPoolId", "userPoolClientId", "cognitoEndpoint", "apiEndpoint"}


@pytest.fixture
def applied(root: Path, emulator: Emulator, tmp_path: Path) -> Iterator[Terraform]:
    """What moto can hold of the module, applied to the session's emulator; destroyed at the end."""
    terraform = Terraform(
        root, data_dir=root / ".terraform", state=tmp_path / "site.tfstate", env=emulator.environment()
    )
    terraform.apply({}, targets=APPLIED)
    try:
        yield terraform
    finally:
        # The page's bucket (its objects with it: force_destroy) and the stand-alone bucket.
        terraform.destroy({}, targets=("module.site.module.bucket.aws_s3_bucket.this", "module.bucket"))


@needs_terraform
def test_against_the_emulator_the_files_config_and_merged_policy_apply_and_replan_clean(
    applied: Terraform, emulator: Emulator
) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=emulator.endpoint_url,
        region_name=emulator.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    bucket = "test-upload-page-bucket"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["app.css", "app.js", "config.json", "index.html"]
    index = s3.get_object(Bucket=bucket, Key="index.html")
    assert index["ContentType"] == "text/html; charset=utf-8"
    assert index["CacheControl"] == "no-cache"
    assert index["Body"].read() == (FIXTURE / "index.html").read_bytes()
    config = json.loads(s3.get_object(Bucket=bucket, Key="config.json")["Body"].read())
    assert config["apiEndpoint"] == API_ENDPOINT
    assert config["maxUploadBytes"] == 104857600

    policy = json.loads(s3.get_bucket_policy(Bucket="test-upload-page-policy")["Policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"DenyInsecureTransport", "CloudFrontReadsThePage"}
    grant = statements["CloudFrontReadsThePage"]
    assert grant["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert grant["Condition"] == {"StringEquals": {"AWS:SourceArn": STAND_IN_DISTRIBUTION}}
    (rule,) = s3.get_bucket_cors(Bucket="test-upload-page-policy")["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://page.example.com"]
    assert rule["AllowedMethods"] == ["POST"]

    assert not applied.plan({}, targets=APPLIED), applied.last_output


# --- The root stack ---------------------------------------------------------------------------------------


def test_the_embedded_target_leaves_the_page_to_a_local_server() -> None:
    assert EMBEDDED_VARIABLES["enable_upload_page"] is False
    variables = (STACK_DIR / "variables.tf").read_text(encoding="utf-8")
    block = variables[variables.index('variable "enable_upload_page"') :]
    assert re.search(r"^  default\s+= true$", block[: block.index("\n}\n")], flags=re.M)
    main = (MODULE / "main.tf").read_text(encoding="utf-8")
    assert "CreateResponseHeadersPolicy" in main
    assert "enable_upload_page is false" in main


@needs_terraform
def test_the_session_stack_admits_the_given_page_origin_in_both_cors(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    (page_origin,) = deployed_stack.variables[
        "api_cors_allow_origins"
    ]  # SESSION_PAGE_ORIGIN, tests/conftest.py
    # The embedded target serves no page itself (a null output is left out of `terraform output -json`).
    assert out.get("upload_page_url") is None
    (rule,) = deployed_stack.client("s3").get_bucket_cors(Bucket=out["landing_bucket"])["CORSRules"]
    assert rule["AllowedOrigins"] == [page_origin]
    assert rule["AllowedMethods"] == ["POST"]
    assert sorted(rule["ExposeHeaders"]) == ["ETag", "Location"]
    api_id = out["api_endpoint"].split("//", 1)[1].split(".", 1)[0]
    api = deployed_stack.client("apigatewayv2").get_api(ApiId=api_id)
    assert api["CorsConfiguration"]["AllowOrigins"] == [page_origin]


@needs_terraform
def test_with_the_page_on_its_origin_joins_both_cors_without_a_cycle(
    deployed_stack: Any, tmp_path: Path
) -> None:
    variables = {
        **deployed_stack.variables,
        "enable_upload_page": True,
        "upload_page_source_dir": str(FIXTURE),
    }
    deployed_stack.terraform.plan(variables, refresh=False, out=tmp_path / "plan")
    document = deployed_stack.terraform.show_json(tmp_path / "plan")
    changes = {change["address"]: change["change"] for change in document["resource_changes"]}
    created = {address for address, change in changes.items() if change["actions"] == ["create"]}
    assert {
        f"{SITE}.aws_cloudfront_distribution.this",
        f"{SITE}.aws_cloudfront_origin_access_control.this",
        f"{SITE}.aws_cloudfront_response_headers_policy.security",
        f"{SITE}.module.bucket.aws_s3_bucket.this",
        f"{SITE}.aws_s3_object.config",
        f'{SITE}.aws_s3_object.file["index.html"]',
    } <= created
    # Nothing but the two CORS lists changes in what the session applied.
    updated = {address for address, change in changes.items() if change["actions"] == ["update"]}
    assert updated == {
        "module.api[0].aws_apigatewayv2_api.this",
        'module.bucket["landing"].aws_s3_bucket_cors_configuration.this[0]',
    }

    # Both CORS lists are sets: holding the page's origin (the distribution's domain, known after apply), they
    # are known after apply as a whole.
    api = changes["module.api[0].aws_apigatewayv2_api.this"]
    assert api["after_unknown"]["cors_configuration"][0]["allow_origins"] is True
    landing = changes['module.bucket["landing"].aws_s3_bucket_cors_configuration.this[0]']
    assert landing["after_unknown"]["cors_rule"][0]["allowed_origins"] is True
    assert landing["after"]["cors_rule"][0]["allowed_methods"] == ["POST"]

    # The CSP names the API by its regional pattern (no edge to the API), Cognito and the landing bucket.
    policy = changes[f"{SITE}.aws_cloudfront_response_headers_policy.security"]["after"]
    csp = policy["security_headers_config"][0]["content_security_policy"][0]["content_security_policy"]
    region, landing_bucket = deployed_stack.outputs["region"], deployed_stack.outputs["landing_bucket"]
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src ")).split()[1:]
    assert connect == [
        "'self'",
        f"https://*.execute-api.{region}.amazonaws.com",
        f"https://cognito-idp.{region}.amazonaws.com",
        f"https://{landing_bucket}.s3.{region}.amazonaws.com",
        f"https://{landing_bucket}.s3.amazonaws.com",
    ]
    # config.json (only it) depends on the API endpoint and the pool's ids.
    site = document["configuration"]["root_module"]["module_calls"]["site"]["expressions"]
    assert "module.api[0].api_endpoint" in site["api_endpoint"]["references"]
    assert "module.identity.user_pool_id" in site["user_pool_id"]["references"]
    assert "module.identity.client_id" in site["user_pool_client_id"]["references"]
    assert document["planned_values"]["outputs"]["upload_page_url"].get("value") is None  # known after apply
    assert document["output_changes"]["upload_page_url"]["after_unknown"] is True


@needs_terraform
def test_with_a_custom_name_the_page_origin_is_known_and_joins_both_cors(
    deployed_stack: Any, tmp_path: Path
) -> None:
    (page_origin,) = deployed_stack.variables["api_cors_allow_origins"]
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    variables = {
        **deployed_stack.variables,
        "enable_upload_page": True,
        "upload_page_source_dir": str(FIXTURE),
        "upload_page_aliases": ["upload.example.com"],
        "upload_page_acm_certificate_arn": certificate,
    }
    deployed_stack.terraform.plan(variables, refresh=False, out=tmp_path / "plan")
    document = deployed_stack.terraform.show_json(tmp_path / "plan")
    changes = {change["address"]: change["change"]["after"] for change in document["resource_changes"]}
    origins = {"https://upload.example.com", page_origin}
    (cors,) = changes["module.api[0].aws_apigatewayv2_api.this"]["cors_configuration"]
    assert set(cors["allow_origins"]) == origins
    (rule,) = changes['module.bucket["landing"].aws_s3_bucket_cors_configuration.this[0]']["cors_rule"]
    assert set(rule["allowed_origins"]) == origins
    assert rule["allowed_methods"] == ["POST"]
    assert document["planned_values"]["outputs"]["upload_page_url"]["value"] == "https://upload.example.com/"
