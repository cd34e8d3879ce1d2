"""Recovery a user can run: move dead letters back to their queue, and announce a landed version again.

Both are safe to run twice: every load is idempotent (a version already loaded is skipped on its manifest, a
part already done on its result, a lake copy already there is a no-op), so a message redriven or replayed
twice costs a little work and changes nothing.

- :func:`redrive` uses SQS's own message-move task where the target has it (AWS); where it does not (moto),
  it receives, sends and only then deletes, so a message is never dropped (at worst, after a crash between
  send and delete, it is sent twice, which the loaders absorb).
- :func:`replay` publishes an S3 event notification for one object version to the landing bucket's topic,
  so it reaches every subscribed loader exactly as S3's own event did. The event time is the one the
  original event had (from the file's manifest, else the object's LastModified), so "the later S3 event
  wins" still orders the replay where the original stood.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pipeline.manifests import manifest_key
from pipeline.objects import ObjectRef
from pipeline_toolkit.s3_events import s3_event, s3_record

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

SQS_BATCH_LIMIT = 10
# What an SQS endpoint without message-move tasks answers (moto: a 500 for the unimplemented action).
_UNSUPPORTED = {"InvalidAction", "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation"}


@dataclass(frozen=True, slots=True)
class RedriveResult:
    method: str  # "move-task" or "copy"
    moved: int | None  # messages moved (None: a move task, which reports its progress itself)
    task_handle: str | None = None


def queue_arn(sqs: SQSClient, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def redrive(sqs: SQSClient, dlq_url: str, queue_url: str, *, method: str = "auto") -> RedriveResult:
    """Move every message of ``dlq_url`` back to ``queue_url``."""
    if method in ("auto", "move-task"):
        try:
            task = sqs.start_message_move_task(
                SourceArn=queue_arn(sqs, dlq_url), DestinationArn=queue_arn(sqs, queue_url)
            )
            return RedriveResult("move-task", None, task["TaskHandle"])
        except (NotImplementedError, ClientError) as exc:
            unsupported = isinstance(exc, NotImplementedError) or (
                exc.response.get("Error", {}).get("Code") in _UNSUPPORTED
                or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
            )
            if method == "move-task" or not unsupported:
                raise
    return RedriveResult("copy", copy_messages(sqs, dlq_url, queue_url))


def copy_messages(sqs: SQSClient, source_url: str, destination_url: str, *, visibility: int = 60) -> int:
    """Receive, send, then delete: a message leaves the source only once the destination has it."""
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=SQS_BATCH_LIMIT,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return moved
        entries: list[Any] = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        response = sqs.send_message_batch(QueueUrl=destination_url, Entries=entries)
        sent = {entry["Id"] for entry in response.get("Successful", [])}
        done = [message for index, message in enumerate(messages) if str(index) in sent]
        if done:
            sqs.delete_message_batch(
                QueueUrl=source_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        moved += len(done)
        if len(done) < len(messages):
            # The rest stays in the source queue (visible again after ``visibility``); report, don't loop.
            failed = [entry.get("Message") for entry in response.get("Failed", [])]
            raise RuntimeError(f"moved {moved}; {len(messages) - len(done)} could not be sent: {failed}")


def _original_event_time(s3: S3Client, quarantine_bucket: str, ref: ObjectRef) -> str | None:
    for stage in ("database", "datalake"):
        try:
            body = s3.get_object(Bucket=quarantine_bucket, Key=manifest_key(stage, ref))["Body"].read()
        except ClientError:
            continue
        event_time = json.loads(body).get("event_time")
        if event_time:
            # Manifests keep microseconds; S3 events carry milliseconds (the token is rebuilt from this).
            return str(event_time)
    return None


def replay(
    s3: S3Client,
    sns: SNSClient,
    *,
    landing_bucket: str,
    quarantine_bucket: str,
    topic_arn: str,
    key: str,
    version: str | None = None,
    region: str = "us-east-1",
) -> ObjectRef:
    """Announce ``key`` (its ``version``, default the current one) to every loader again."""
    selected: dict[str, Any] = {"VersionId": version} if version else {}
    head = s3.head_object(Bucket=landing_bucket, Key=key, **selected)
    version_id = head.get("VersionId") or None
    etag = head["ETag"].strip('"')
    modified = head["LastModified"]
    ref = ObjectRef(
        bucket=landing_bucket,
        key=key,
        event_time=modified,
        version_id=version_id,
        etag=etag,
        size=head["ContentLength"],
    )
    event_time = _original_event_time(s3, quarantine_bucket, ref) or ref.event_time_iso
    record = s3_record(
        landing_bucket,
        key,
        version=version_id,
        etag=etag,
        size=head["ContentLength"],
        time=event_time,
        region=region,
        sequencer=f"{int(time.time() * 1000):016X}",
        configuration_id="pipeline-replay",
        minimal=True,
    )
    sns.publish(TopicArn=topic_arn, Message=json.dumps(s3_event(record)), Subject="Amazon S3 Notification")
    return ref
