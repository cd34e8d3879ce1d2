"""The whole stack applied to the embedded emulator (once per session, by the ``deployed_stack`` fixture),
then checked with boto3: the wiring works, every resource is configured as designed, and a plan shows no
drift."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from pipeline_toolkit import lookup, query, quotas
from pipeline_toolkit.project import load_functions, stack_dir
from pipeline_toolkit.terraform import Terraform, TerraformError

pytestmark = pytest.mark.terraform

FUNCTIONS = load_functions(Path(__file__).resolve().parents[2])
FUNCTION_KEYS = tuple(FUNCTIONS)
PREFIX = "pipeline-test"  # project "pipeline", environment "test": see deployed_stack in tests/conftest.py
HANDLERS = {key: [function.handler] for key, function in FUNCTIONS.items()}
SUBSCRIBED = tuple(key for key, function in FUNCTIONS.items() if function.trigger == "landing-events")
# Functions with a queue, its dead-letter queue, event source mapping and queue alarms; the others (trigger
# http, the ingest API) have none of these: tests/terraform/test_iam_ingest.py checks the ingest API's role.
QUEUED = tuple(key for key, function in FUNCTIONS.items() if function.has_queue)
API_FUNCTION = "ingest-api"


def _statements(policy: Any) -> list[dict[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document["Statement"]
    return [statements] if isinstance(statements, dict) else list(statements)


def _account(stack: Any) -> str:
    account: str = stack.client("sts").get_caller_identity()["Account"]
    return account


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_outputs_hold_what_the_other_tools_need(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    assert out["landing_bucket"] == f"{PREFIX}-landing"
    assert out["datalake_bucket"] == f"{PREFIX}-datalake"
    assert out["quarantine_bucket"] == f"{PREFIX}-quarantine"
    assert out["table_name"] == f"{PREFIX}-users"
    assert out["topic_arn"].endswith(f":{PREFIX}-landing-events")
    assert out["functions"] == {key: f"{PREFIX}-{key}" for key in FUNCTION_KEYS}
    assert set(out["queues"]) == set(QUEUED)
    assert set(out["event_source_mappings"]) == set(QUEUED)
    assert out["user_pool_id"]
    assert out["user_pool_client_id"]
    assert out["api_endpoint"].startswith("https://")
    for key, queue in out["queues"].items():
        assert set(queue) == {"url", "arn", "dlq_url", "dlq_arn"}
        assert queue["arn"].endswith(f":{PREFIX}-{key}")
        assert queue["dlq_arn"].endswith(f":{PREFIX}-{key}-dlq")
    assert set(out["repository_urls"]) == set(FUNCTION_KEYS)
    assert all(url.endswith(f"/{PREFIX}-{key}") for key, url in out["repository_urls"].items())
    assert out["lambda_architecture"] == "x86_64"
    assert out["region"] == deployed_stack.env["AWS_REGION"]
    assert out["glue_database"] == PREFIX.replace("-", "_") + "_datalake"
    assert out["athena_workgroup"] == PREFIX
    assert out["athena_results_bucket"] == f"{PREFIX}-athena"
    assert set(out["named_queries"]) == set(query.named_queries())


def test_object_put_into_landing_arrives_on_both_queues_through_sns(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    s3 = deployed_stack.client("s3")
    sqs = deployed_stack.client("sqs")
    sns = deployed_stack.client("sns")

    # The path is bucket -> topic -> queues: the bucket notifies only the topic; both queues subscribe to it.
    notification = s3.get_bucket_notification_configuration(Bucket=out["landing_bucket"])
    assert not notification.get("QueueConfigurations")
    assert [(t["TopicArn"], t["Events"]) for t in notification["TopicConfigurations"]] == [
        (out["topic_arn"], ["s3:ObjectCreated:*"])
    ]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=out["topic_arn"])["Subscriptions"]
    assert sorted((s["Protocol"], s["Endpoint"]) for s in subscriptions) == sorted(
        ("sqs", out["queues"][key]["arn"]) for key in SUBSCRIBED
    )

    key = f"tests/terraform/{uuid.uuid4()}.csv"
    s3.put_object(Bucket=out["landing_bucket"], Key=key, Body=b"user_id,email\n1,a@example.com\n")
    try:
        for function_key in SUBSCRIBED:
            queue = out["queues"][function_key]
            record = _receive_s3_event(sqs, queue["url"], key)
            assert record is not None, f"no S3 event for {key} on the {function_key} queue"
            assert record["eventSource"] == "aws:s3"
            assert record["eventName"].startswith("ObjectCreated:")
            assert record["s3"]["bucket"]["name"] == out["landing_bucket"]
    finally:
        for version in s3.list_object_versions(Bucket=out["landing_bucket"], Prefix=key).get("Versions", []):
            s3.delete_object(Bucket=out["landing_bucket"], Key=key, VersionId=version["VersionId"])


def _receive_s3_event(sqs: Any, queue_url: str, key: str) -> Any:
    """Receive until the S3 event about ``key`` turns up; delete it, and hand other messages straight back."""
    for _ in range(10):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        found = None
        for message in messages:
            # Raw message delivery: the body is the S3 event itself, not an SNS envelope.
            body = json.loads(message["Body"])
            # S3 URL-encodes the key in its events (form encoding: a space becomes "+").
            records = [
                r
                for r in body.get("Records", [])
                if unquote_plus(r.get("s3", {}).get("object", {}).get("key", "")) == key
            ]
            if records:
                found = records[0]
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("function_key", QUEUED)
def test_each_queue_has_its_dead_letter_queue_and_accepts_only_the_topic(
    deployed_stack: Any, function_key: str
) -> None:
    out = deployed_stack.outputs
    queue = out["queues"][function_key]
    sqs = deployed_stack.client("sqs")

    attributes = sqs.get_queue_attributes(QueueUrl=queue["url"], AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == queue["dlq_arn"]
    # 5 by default; 10 for the part loader, whose checkpointed parts may take several attempts.
    assert int(redrive["maxReceiveCount"]) == (10 if function_key == "part-loader" else 5)
    # Six times the function timeout plus the batching window (0 s), the default: 60 s, or the list's 300 s
    # for the part loader (a part is the big piece of work).
    timeout = 300 if function_key == "part-loader" else 60
    assert int(attributes["VisibilityTimeout"]) == 6 * timeout
    assert attributes["SqsManagedSseEnabled"] == "true"

    dlq_attributes = sqs.get_queue_attributes(QueueUrl=queue["dlq_url"], AttributeNames=["All"])["Attributes"]
    assert dlq_attributes["QueueArn"] == queue["dlq_arn"]
    assert int(dlq_attributes["MessageRetentionPeriod"]) > int(attributes["MessageRetentionPeriod"])
    assert "RedrivePolicy" not in dlq_attributes
    # Only its own queue may dead-letter into it (and redrive from it).
    assert json.loads(dlq_attributes["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [queue["arn"]],
    }

    allows = [s for s in _statements(attributes["Policy"]) if s["Effect"] == "Allow"]
    if function_key not in SUBSCRIBED:
        assert allows == []  # a work queue: only the functions whose roles grant it may send
        return
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert _as_list(allows[0]["Action"]) == ["sqs:SendMessage"]
    assert allows[0]["Resource"] == queue["arn"]
    assert allows[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": out["topic_arn"]}}


@pytest.mark.parametrize("function_key", QUEUED)
def test_each_function_runs_its_handler_from_its_image_with_its_environment(
    deployed_stack: Any, function_key: str
) -> None:
    out = deployed_stack.outputs
    function = deployed_stack.client("lambda").get_function(FunctionName=out["functions"][function_key])
    config = function["Configuration"]

    assert config["PackageType"] == "Image"
    assert function["Code"]["ImageUri"] == f"{out['repository_urls'][function_key]}:latest"
    assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == HANDLERS[function_key]
    assert config["Architectures"] == ["x86_64"]
    assert config["Timeout"] == (300 if function_key == "part-loader" else 60)  # the list's settings
    assert config["MemorySize"] == 512
    assert config["TracingConfig"] == {"Mode": "Active"}

    common = {
        "PIPELINE_QUARANTINE_BUCKET": out["quarantine_bucket"],
        "POWERTOOLS_SERVICE_NAME": function_key,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PIPELINE_FUNCTION_TIMEOUT_SECONDS": str(config["Timeout"]),
    }
    # The loaders write the curated zone in the lake bucket, and enrichment reads its reference data there.
    specific = {"PIPELINE_DATALAKE_BUCKET": out["datalake_bucket"]}
    if function_key != "datalake-loader":
        specific["PIPELINE_USERS_TABLE"] = out["table_name"]
        specific["PIPELINE_REFERENCE_VERSIONS"] = "email_providers=v1"
    if function_key == "database-loader":
        specific["PIPELINE_PARTS_QUEUE_URL"] = out["queues"]["part-loader"]["url"]
        specific["PIPELINE_PART_BYTES"] = str(deployed_stack.variables["part_bytes"])
    assert config["Environment"]["Variables"] == {**common, **specific}


def test_the_api_function_runs_its_handler_with_no_queue_behind_the_api(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    awslambda = deployed_stack.client("lambda")
    config = awslambda.get_function(FunctionName=out["functions"][API_FUNCTION])["Configuration"]
    assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == HANDLERS[API_FUNCTION]
    assert config["Timeout"] == 29  # within API Gateway's 30 s integration limit
    assert config["Environment"]["Variables"] == {
        "PIPELINE_LANDING_BUCKET": out["landing_bucket"],
        "PIPELINE_QUARANTINE_BUCKET": out["quarantine_bucket"],
        "PIPELINE_UPLOAD_MAX_BYTES": str(100 << 20),
        "PIPELINE_UPLOAD_EXPIRY_SECONDS": "300",
        "PIPELINE_EVENTS_MAX_BYTES": str(1 << 20),
        "POWERTOOLS_SERVICE_NAME": API_FUNCTION,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PIPELINE_FUNCTION_TIMEOUT_SECONDS": "29",
    }
    mappings = awslambda.list_event_source_mappings(FunctionName=config["FunctionArn"])["EventSourceMappings"]
    assert mappings == []

    api_id = out["api_endpoint"].split("//", 1)[1].split(".", 1)[0]
    gateway = deployed_stack.client("apigatewayv2")
    routes = gateway.get_routes(ApiId=api_id)["Items"]
    assert {route["RouteKey"] for route in routes} == {
        "POST /uploads",
        "POST /events/{dataset}",
        "GET /files",
        "GET /files/{upload_id}",
    }
    assert {route["AuthorizationType"] for route in routes} == {"JWT"}
    # One authorizer and one integration behind every route (moto has GetAuthorizer, not GetAuthorizers).
    (authorizer_id,) = {route["AuthorizerId"] for route in routes}
    (target,) = {route["Target"] for route in routes}
    authorizer = gateway.get_authorizer(ApiId=api_id, AuthorizerId=authorizer_id)
    assert authorizer["JwtConfiguration"]["Audience"] == [out["user_pool_client_id"]]
    assert authorizer["JwtConfiguration"]["Issuer"].endswith(f"/{out['user_pool_id']}")
    integration = gateway.get_integration(ApiId=api_id, IntegrationId=target.removeprefix("integrations/"))
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")


@pytest.mark.parametrize("function_key", QUEUED)
def test_each_event_source_mapping_is_configured_and_left_disabled_for_the_local_runtime(
    deployed_stack: Any, function_key: str
) -> None:
    out = deployed_stack.outputs
    awslambda = deployed_stack.client("lambda")
    function_arn = awslambda.get_function(FunctionName=out["functions"][function_key])["Configuration"][
        "FunctionArn"
    ]
    mappings = awslambda.list_event_source_mappings(EventSourceArn=out["queues"][function_key]["arn"])[
        "EventSourceMappings"
    ]
    assert len(mappings) == 1
    mapping = mappings[0]
    assert mapping["UUID"] == out["event_source_mappings"][function_key]
    assert mapping["FunctionArn"] == function_arn
    # managed_sqs_polling = false on the embedded target: the mapping exists, disabled, so moto never invokes
    # the function inside SendMessage and the local runtime polls instead.
    assert mapping["State"] == "Disabled"
    # One part per invocation: a part fills an invocation, and a batch-mate handed back untried would spend a
    # receive for nothing.
    assert mapping["BatchSize"] == (1 if function_key == "part-loader" else 10)
    assert mapping.get("MaximumBatchingWindowInSeconds", 0) == 0  # moto omits a zero window
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}


@pytest.mark.parametrize("function_key", QUEUED)
def test_each_role_grants_named_actions_on_named_resources(deployed_stack: Any, function_key: str) -> None:
    out = deployed_stack.outputs
    iam = deployed_stack.client("iam")
    function = deployed_stack.client("lambda").get_function(FunctionName=out["functions"][function_key])
    role_name = function["Configuration"]["Role"].rsplit("/", 1)[-1]

    policy_names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    assert len(policy_names) == 1
    assert not iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_names[0])["PolicyDocument"]
    grants: dict[str, set[str]] = {}
    for statement in _statements(document):
        assert statement["Effect"] == "Allow"
        actions = _as_list(statement["Action"])
        resources = _as_list(statement["Resource"])
        assert all("*" not in action for action in actions), statement
        if "*" in resources:
            # The one AWS service here without resource-level permissions.
            assert set(actions) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, statement
        for action in actions:
            grants.setdefault(action, set()).update(resources)

    landing_objects = f"arn:aws:s3:::{out['landing_bucket']}/*"
    quarantine = f"arn:aws:s3:::{out['quarantine_bucket']}"
    queue_arn = out["queues"][function_key]["arn"]
    assert landing_objects in grants["s3:GetObject"]
    assert landing_objects in grants["s3:GetObjectVersion"]
    for action in (
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    ):
        assert grants[action] == {queue_arn}
    # The lake loader writes only manifests; the loaders of records also write rejects and quarantined files.
    assert f"{quarantine}/manifests/*" in grants["s3:PutObject"]
    records = {f"{quarantine}/rejects/*", f"{quarantine}/files/*"}
    if function_key == "datalake-loader":
        assert not records & grants["s3:PutObject"]
    else:
        assert grants["s3:PutObject"] >= records
    assert f"{quarantine}/*" not in grants["s3:PutObject"]
    assert grants["logs:PutLogEvents"] == {
        f"arn:aws:logs:{out['region']}:{_account(deployed_stack)}:log-group:/aws/lambda/{out['functions'][function_key]}:*"
    }
    other_queue = next(q["arn"] for k, q in out["queues"].items() if k != function_key)
    assert not any(other_queue in resources for resources in grants.values())

    table_actions = {
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:BatchGetItem",
    }
    datalake_objects = f"arn:aws:s3:::{out['datalake_bucket']}/*"
    if function_key == "datalake-loader":
        assert datalake_objects in grants["s3:PutObject"]
        assert grants["s3:AbortMultipartUpload"] == {datalake_objects}
        assert not table_actions & set(grants)
    else:
        # Only the curated zone of the lake: never the raw copies.
        assert datalake_objects not in grants["s3:PutObject"]
        curated = f"arn:aws:s3:::{out['datalake_bucket']}/curated/*"
        assert curated in grants["s3:PutObject"]
        assert curated in grants["s3:AbortMultipartUpload"]
        table_arn = out["table_arn"]
        assert all(grants[action] == {table_arn} for action in table_actions)


def test_buckets_are_versioned_encrypted_private_and_tls_only(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    s3 = deployed_stack.client("s3")
    for bucket in (out["landing_bucket"], out["datalake_bucket"], out["quarantine_bucket"]):
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert len(block) == 4
        assert all(block.values())
        denies = [
            s for s in _statements(s3.get_bucket_policy(Bucket=bucket)["Policy"]) if s["Effect"] == "Deny"
        ]
        assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert lifecycle[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
        assert lifecycle[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30

    landing = s3.get_bucket_lifecycle_configuration(Bucket=out["landing_bucket"])["Rules"][0]
    assert landing["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert landing["Expiration"]["Days"] == 365


def test_users_table_is_on_demand_with_recovery_the_aws_owned_key_and_the_email_index(
    deployed_stack: Any,
) -> None:
    dynamodb = deployed_stack.client("dynamodb")
    table = dynamodb.describe_table(TableName=deployed_stack.outputs["table_name"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # `pipeline get-user --email` queries it; keys only, so it costs each write no more than its keys.
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == lookup.EMAIL_INDEX
    assert index["KeySchema"] == [{"AttributeName": "email", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # Without kms_key_arn, the AWS owned key: DynamoDB reports no SSE description (no KMS key, no KMS cost).
    assert table.get("SSEDescription", {}).get("SSEType") != "KMS"
    # The embedded target turns deletion protection off so the throw-away stack can be destroyed.
    assert table["DeletionProtectionEnabled"] is False
    backups = dynamodb.describe_continuous_backups(TableName=table["TableName"])[
        "ContinuousBackupsDescription"
    ]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_repositories_have_immutable_tags_and_scan_on_push(deployed_stack: Any) -> None:
    ecr = deployed_stack.client("ecr")
    for key in FUNCTION_KEYS:
        (repository,) = ecr.describe_repositories(repositoryNames=[f"{PREFIX}-{key}"])["repositories"]
        assert repository["imageTagMutability"] == "IMMUTABLE"
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
        rules = json.loads(
            ecr.get_lifecycle_policy(repositoryName=repository["repositoryName"])["lifecyclePolicyText"]
        )
        assert {"type": "expire"} in [rule["action"] for rule in rules["rules"]]


@pytest.mark.parametrize("function_key", FUNCTION_KEYS)
def test_each_repository_lets_lambda_pull_for_its_function_only(
    deployed_stack: Any, function_key: str
) -> None:
    out = deployed_stack.outputs
    name = out["repository_urls"][function_key].rsplit("/", 1)[-1]
    policy = deployed_stack.client("ecr").get_repository_policy(repositoryName=name)["policyText"]
    (statement,) = _statements(policy)
    function_arn = (
        f"arn:aws:lambda:{out['region']}:{_account(deployed_stack)}:function:{out['functions'][function_key]}"
    )
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert sorted(_as_list(statement["Action"])) == ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    assert sorted(_as_list(statement["Condition"]["StringLike"]["aws:sourceArn"])) == [
        function_arn,
        f"{function_arn}:*",
    ]


@pytest.mark.parametrize("function_key", FUNCTION_KEYS)
def test_each_role_name_carries_the_region_as_iam_names_are_global(
    deployed_stack: Any, function_key: str
) -> None:
    out = deployed_stack.outputs
    function = deployed_stack.client("lambda").get_function(FunctionName=out["functions"][function_key])
    role_name = function["Configuration"]["Role"].rsplit("/", 1)[-1]
    assert role_name == f"{out['functions'][function_key]}-{out['region']}"


def test_what_sns_cannot_deliver_goes_to_the_subscriptions_dead_letter_queue(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    sns = deployed_stack.client("sns")
    sqs = deployed_stack.client("sqs")
    dlq = out["subscription_dlq"]
    assert dlq["arn"].endswith(f":{PREFIX}-subscriptions-dlq")
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=out["topic_arn"])["Subscriptions"]
    assert len(subscriptions) == len(SUBSCRIBED)
    for subscription in subscriptions:
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
        redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
        assert redrive == {"deadLetterTargetArn": dlq["arn"]}

    attributes = sqs.get_queue_attributes(QueueUrl=dlq["url"], AttributeNames=["All"])["Attributes"]
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert int(attributes["MessageRetentionPeriod"]) == 14 * 24 * 3600
    allows = [s for s in _statements(attributes["Policy"]) if s["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "sns.amazonaws.com"}
    assert _as_list(allows[0]["Action"]) == ["sqs:SendMessage"]
    assert allows[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": out["topic_arn"]}}


def test_alarms_watch_the_age_of_each_queue_and_the_topics_failed_deliveries(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    alarms = deployed_stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    watched = {(a["Namespace"], a["MetricName"], a["Dimensions"][0]["Value"]): a for a in alarms}
    for key in QUEUED:
        queue_name = out["queues"][key]["arn"].rsplit(":", 1)[-1]
        age = watched[("AWS/SQS", "ApproximateAgeOfOldestMessage", queue_name)]
        # Twice the visibility timeout, at least 15 minutes: 360 s queues get the floor; the part loader's
        # 1,800 s (six times its 300 s timeout) gets 3,600 s.
        assert age["Threshold"] == (3600 if key == "part-loader" else 900)
        assert age["Statistic"] == "Maximum"
    topic_name = out["topic_arn"].rsplit(":", 1)[-1]
    failed = watched[("AWS/SNS", "NumberOfNotificationsFailed", topic_name)]
    assert (failed["Statistic"], failed["Threshold"], failed["ComparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )
    dlq_name = out["subscription_dlq"]["arn"].rsplit(":", 1)[-1]
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq_name) in watched


def test_the_dashboard_shows_depth_age_dead_letters_and_errors_of_every_function(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    body = deployed_stack.client("cloudwatch").get_dashboard(DashboardName=out["dashboard_name"])[
        "DashboardBody"
    ]
    shown = {
        (metric[0], metric[1], metric[3])
        for widget in json.loads(body)["widgets"]
        for metric in widget["properties"]["metrics"]
    }
    for key in QUEUED:
        queue = out["queues"][key]
        queue_name, dlq_name = queue["arn"].rsplit(":", 1)[-1], queue["dlq_arn"].rsplit(":", 1)[-1]
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue_name) in shown
        assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue_name) in shown
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq_name) in shown
        assert ("AWS/Lambda", "Errors", out["functions"][key]) in shown
    subscription_dlq = out["subscription_dlq"]["arn"].rsplit(":", 1)[-1]
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", subscription_dlq) in shown


def test_alarms_watch_function_errors_and_dead_letter_depth(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    alarms = deployed_stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    watched = {(a["Namespace"], a["MetricName"], a["Dimensions"][0]["Value"]) for a in alarms}
    for key in FUNCTION_KEYS:
        assert ("AWS/Lambda", "Errors", out["functions"][key]) in watched
    for key in QUEUED:
        dlq_name = out["queues"][key]["dlq_arn"].rsplit(":", 1)[-1]
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq_name) in watched


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"function_settings": {"datalake-loader": {"batch_size": 50}, "database-loader": {}}},
            "batch_size above 10 needs",
        ),
        (
            {
                "function_settings": {
                    "datalake-loader": {"timeout": 120, "queue_visibility_timeout_seconds": 300},
                    "database-loader": {},
                }
            },
            "at least 6 x timeout",
        ),
        (
            {"function_settings": {"datalake-loader": {"max_receive_count": 0}, "database-loader": {}}},
            "max_receive_count",
        ),
        ({"function_settings": {"no-such-function": {}}}, "must be function keys"),
        ({"image_digests": {"no-such-function": "sha256:" + "0" * 64}}, "must be function keys"),
        ({"lambda_architecture": "sparc"}, "x86_64 or arm64"),
        ({"image_digests": {"datalake-loader": "sha256:abc"}}, "sha256:<64"),
        ({"bucket_name_suffix": "Not_Valid"}, "bucket_name_suffix"),
        # S3 refuses these bucket names, and would only at CreateBucket, halfway through an apply.
        ({"project": "xn--pipeline"}, "S3 refuses bucket names starting with xn--"),
        ({"project": "sthree"}, "S3 refuses bucket names starting with xn--, sthree-"),
        ({"bucket_name_suffix": "mine-s3alias"}, "must not end with -s3alias"),
        ({"bucket_name_suffix": "mine--ol-s3"}, "must not end with -s3alias, --ol-s3"),
        # S3, SQS, SNS, DynamoDB and Logs take only a key of their own region.
        (
            {"kms_key_arn": "arn:aws:kms:eu-west-3:123456789012:key/00000000-0000-0000-0000-000000000000"},
            "key of region eu-west-3",
        ),
    ],
)
def test_wrong_values_are_refused_before_anything_is_deployed(
    deployed_stack: Any, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(TerraformError) as refused:
        deployed_stack.terraform.plan({**deployed_stack.variables, **overrides}, refresh=False)
    assert message in " ".join(refused.value.output.split())


def test_log_retention_of_zero_keeps_logs_forever_as_cloudwatch_allows(deployed_stack: Any) -> None:
    assert deployed_stack.terraform.plan({**deployed_stack.variables, "log_retention_days": 0}, refresh=False)
    changes = re.findall(r"retention_in_days\s+= 30 -> 0", deployed_stack.terraform.last_output)
    assert len(changes) == len(FUNCTION_KEYS) + 1  # and the ingest API's access logs


def _planned(terraform: Terraform, variables: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """What a plan would leave each resource as (address -> the planned attributes)."""
    terraform.plan(variables, refresh=False, out=path)
    return {
        change["address"]: change["change"]["after"] or {}
        for change in terraform.show_json(path)["resource_changes"]
    }


def test_a_kms_key_encrypts_the_table_and_none_means_the_aws_owned_key(
    deployed_stack: Any, tmp_path: Path
) -> None:
    region, account = deployed_stack.outputs["region"], _account(deployed_stack)
    key = f"arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-000000000000"
    with_key = _planned(
        deployed_stack.terraform, {**deployed_stack.variables, "kms_key_arn": key}, tmp_path / "p"
    )
    assert with_key["module.table.aws_dynamodb_table.this"]["server_side_encryption"] == [
        {"enabled": True, "kms_key_arn": key}
    ]
    default = _planned(deployed_stack.terraform, deployed_stack.variables, tmp_path / "q")
    # The AWS owned key: no KMS key, no KMS request billed (the provider keeps no block for it once applied).
    encryption = default["module.table.aws_dynamodb_table.this"]["server_side_encryption"]
    assert not any(block["enabled"] or block["kms_key_arn"] for block in encryption), encryption


def test_every_alarm_notifies_the_alarm_actions(deployed_stack: Any, tmp_path: Path) -> None:
    on_call = f"arn:aws:sns:{deployed_stack.outputs['region']}:{_account(deployed_stack)}:on-call"
    planned = _planned(
        deployed_stack.terraform, {**deployed_stack.variables, "alarm_actions": [on_call]}, tmp_path / "p"
    )
    alarms = {
        address: after for address, after in planned.items() if ".aws_cloudwatch_metric_alarm." in address
    }
    # Per function: errors, and with a queue dead letters and age of the oldest message; for the topic:
    # failed deliveries and the subscriptions' dead-letter queue.
    assert len(alarms) == len(FUNCTION_KEYS) + 2 * len(QUEUED) + 2
    for address, alarm in alarms.items():
        assert alarm["alarm_actions"] == [on_call], address
        assert alarm["ok_actions"] == [on_call], address


def test_the_quota_check_reads_what_the_plan_would_deploy(deployed_stack: Any, tmp_path: Path) -> None:
    """`make plan` and `make deploy` feed the saved plan to pipeline_toolkit.quotas: on AWS the mappings are
    enabled (managed_sqs_polling), 5 concurrent invocations each, which a new account's 10 do not hold."""
    variables = {**deployed_stack.variables, "managed_sqs_polling": True}
    deployed_stack.terraform.plan(variables, refresh=False, out=tmp_path / "plan")
    plan = deployed_stack.terraform.show_json(tmp_path / "plan")
    sizing = quotas.sizing_from_plan(plan)
    assert {f.name for f in sizing} == set(deployed_stack.outputs["functions"].values())
    # The ingest API's function has no event source mapping: its concurrency is the API's throttling's.
    queued = {deployed_stack.outputs["functions"][key] for key in QUEUED}
    assert {(f.memory_mb, f.maximum_concurrency) for f in sizing if f.name in queued} == {(512, 5)}
    assert {f.maximum_concurrency for f in sizing if f.name not in queued} == {0}
    new_account = quotas.LambdaLimits(concurrent_executions=10, unreserved_concurrent_executions=10)
    (warning,) = quotas.quota_warnings(sizing, new_account)
    assert f"may run {5 * len(QUEUED)} invocations at once" in warning
    # The emulator has no GetAccountSettings: the check says it checked nothing rather than failing the plan.
    (unchecked,) = quotas.check_plan(plan, deployed_stack.client("lambda"))
    assert "quotas not checked" in unchecked


def test_plan_right_after_apply_shows_no_changes(deployed_stack: Any) -> None:
    terraform = deployed_stack.terraform
    has_changes = terraform.plan(deployed_stack.variables)
    assert not has_changes, f"terraform plan after apply wants changes:\n{terraform.last_output}"


def test_repositories_can_be_created_before_anything_else(deployed_stack: Any, tmp_path: Path) -> None:
    """A first deploy creates the repositories alone (`-target=module.ecr`), pushes the images, then applies
    the rest: the repositories must not depend on any other resource."""
    fresh = Terraform(
        stack_dir(),
        data_dir=tmp_path / "data",
        state=tmp_path / "terraform.tfstate",
        env={**deployed_stack.env, "TF_CLI_ARGS_plan": "-target=module.ecr"},
    )
    fresh.init()
    assert fresh.plan(deployed_stack.variables)
    planned = re.findall(r"^  # (\S+) will be created$", fresh.last_output, flags=re.M)
    assert planned
    assert all(address.startswith("module.ecr[") for address in planned), planned


# Glue's names for the Parquet column types pipeline_toolkit.query reads them as.
GLUE_TYPES = {"string": "string", "int32": "int", "int64": "bigint", "timestamp[ms, tz=UTC]": "timestamp",
              "list<item: string>": "array<string>"}  # fmt: skip


@pytest.mark.parametrize("name", ["users", "events", "rejects"])
def test_glue_tables_have_the_columns_pipeline_query_reads(deployed_stack: Any, name: str) -> None:
    glue = deployed_stack.client("glue")
    table = glue.get_table(DatabaseName=deployed_stack.outputs["glue_database"], Name=name)["Table"]

    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [(f.name, GLUE_TYPES[str(f.type)]) for f in query.SCHEMAS[name]]
    assert table["TableType"] == "EXTERNAL_TABLE"


@pytest.mark.parametrize("name", ["users", "events"])
def test_curated_tables_are_parquet_with_ingest_date_projected(deployed_stack: Any, name: str) -> None:
    out = deployed_stack.outputs
    glue = deployed_stack.client("glue")
    table = glue.get_table(DatabaseName=out["glue_database"], Name=name)["Table"]
    storage = table["StorageDescriptor"]
    location = f"s3://{out['datalake_bucket']}/{query.CURATED_PREFIX}dataset={name}/"

    assert storage["Location"] == location
    assert storage["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert storage["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [("ingest_date", "string")]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.ingest_date.type"] == "date"
    assert parameters["projection.ingest_date.format"] == "yyyy-MM-dd"
    assert parameters["projection.ingest_date.range"].endswith(",NOW")
    assert parameters["storage.location.template"] == location + "ingest_date=${ingest_date}/"
    # No crawler, no partitions: projection computes them.
    assert glue.get_partitions(DatabaseName=out["glue_database"], TableName=name)["Partitions"] == []


def test_rejects_table_reads_the_quarantine_buckets_json_lines(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    table = deployed_stack.client("glue").get_table(DatabaseName=out["glue_database"], Name="rejects")[
        "Table"
    ]
    storage = table["StorageDescriptor"]

    assert storage["Location"] == f"s3://{out['quarantine_bucket']}/{query.REJECTS_PREFIX}"
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert not table.get("PartitionKeys")


def test_the_workgroup_enforces_encrypted_results_in_their_own_private_bucket(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    athena = deployed_stack.client("athena")
    workgroup = athena.get_work_group(WorkGroup=out["athena_workgroup"])["WorkGroup"]
    configuration = workgroup["Configuration"]

    assert workgroup["State"] == "ENABLED"
    assert configuration["EnforceWorkGroupConfiguration"] is True
    result = configuration["ResultConfiguration"]
    assert result["OutputLocation"] == f"s3://{out['athena_results_bucket']}/results/"
    assert result["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"

    s3 = deployed_stack.client("s3")
    bucket = out["athena_results_bucket"]
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    denies = [s for s in _statements(s3.get_bucket_policy(Bucket=bucket)["Policy"]) if s["Effect"] == "Deny"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["Expiration"]["Days"] == 30


def test_named_queries_hold_the_sql_pipeline_query_runs(deployed_stack: Any) -> None:
    out = deployed_stack.outputs
    athena = deployed_stack.client("athena")
    named = query.named_queries()

    for name, query_id in out["named_queries"].items():
        stored = athena.get_named_query(NamedQueryId=query_id)["NamedQuery"]
        assert stored["Name"] == name
        assert stored["QueryString"] == named[name]
        assert stored["Database"] == out["glue_database"]
        assert stored["WorkGroup"] == out["athena_workgroup"]
