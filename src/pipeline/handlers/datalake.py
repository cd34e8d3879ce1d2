"""Lambda handler: copy every landed file into the partitioned data lake."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import clients, datalake
from pipeline.config import DatalakeSettings
from pipeline.datasets import route
from pipeline.events import object_refs
from pipeline.manifests import write_manifest
from pipeline.sources import pin_version

logger = Logger(service="datalake-loader")
# Validated once, at cold start: a bad deployment fails loudly with the variable's name.
settings = DatalakeSettings.from_env()
s3 = clients.s3()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    for announced in object_refs(record.body):
        ref = pin_version(s3, announced)
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
    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
