"""Lambda handler: copy every landed file into the partitioned data lake."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import clients, datalake
from pipeline.budget import Budget, process_within_budget
from pipeline.config import DatalakeSettings
from pipeline.datasets import route
from pipeline.events import object_refs
from pipeline.manifests import write_manifest
from pipeline.sources import pin_version, read_uploader

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set by Terraform to the function key
# Validated once, at cold start: a bad deployment fails loudly with the variable's name.
settings = DatalakeSettings.from_env()
s3 = clients.s3()
sqs = clients.sqs()
# Every failure is reported item by item, even when the whole batch failed: the time budget hands messages
# back that way (Powertools would otherwise raise, failing the invocation and releasing nothing).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord, budget: Budget) -> None:
    for announced in object_refs(record.body):
        # Its uploader too (one HeadObject): the copy replaces the metadata, so it must be carried over.
        ref = read_uploader(s3, pin_version(s3, announced))
        with logger.append_context_keys(source_key=ref.key, source_version=ref.version_label):
            dataset = route(ref.key)
            manifest = datalake.process(s3, ref, dataset, settings.datalake_bucket)
            write_manifest(s3, settings.quarantine_bucket, ref, manifest)
            logger.info(
                "file in the data lake",
                extra={
                    "dataset": dataset.name,
                    "lake_key": manifest.lake_key,
                    "lake_status": manifest.lake_status,
                },
            )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_within_budget(event, record_handler, processor, context, sqs)
