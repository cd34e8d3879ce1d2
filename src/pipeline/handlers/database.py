"""Lambda handler: validate the records of files whose dataset has a schema, and load the good ones."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import clients
from pipeline.budget import Budget, process_within_budget
from pipeline.config import DatabaseSettings
from pipeline.database import TableWriter
from pipeline.datasets import DATASETS, route
from pipeline.events import object_refs
from pipeline.loader import load_file
from pipeline.manifests import write_manifest
from pipeline.sources import pin_version

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set by Terraform to the function key
# Validated once, at cold start: a bad deployment fails loudly with the variable's name.
settings = DatabaseSettings.from_env(DATASETS)
s3 = clients.s3()
sqs = clients.sqs()
dynamodb = clients.dynamodb()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord, budget: Budget) -> None:
    for announced in object_refs(record.body):
        dataset = route(announced.key)
        if not dataset.loads_database or dataset.key_field is None:
            continue  # lake-only or unclassified: the data lake loader has it
        ref = pin_version(s3, announced)
        with logger.append_context_keys(source_key=ref.key, source_version=ref.version_label):
            writer = TableWriter(
                client=dynamodb,
                table=settings.tables[dataset.name],
                key_field=dataset.key_field,
                threads=settings.write_threads,
                strict_ordering=settings.strict_ordering,
            )
            manifest = load_file(
                s3,
                writer,
                ref,
                dataset,
                quarantine_bucket=settings.quarantine_bucket,
                batch_size=settings.batch_size,
                budget=budget,
            )
            write_manifest(s3, settings.quarantine_bucket, ref, manifest)
            logger.info(
                "file loaded",
                extra={
                    "dataset": dataset.name,
                    "status": manifest.status,
                    "records_read": manifest.records_read,
                    "records_loaded": manifest.records_loaded,
                    "records_rejected": manifest.records_rejected,
                    "records_superseded": manifest.records_superseded,
                    "error": manifest.error,
                },
            )


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_within_budget(event, record_handler, processor, context, sqs)
