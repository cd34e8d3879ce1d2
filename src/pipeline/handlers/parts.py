"""Lambda handler: load one part of a big file (planned by the database loader) into the table and the curated
zone, then add up the parts."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import clients
from pipeline.budget import Budget, process_within_budget
from pipeline.config import DatabaseSettings
from pipeline.datasets import DATASETS
from pipeline.enrichment import ReferenceDataError
from pipeline.events import EventError
from pipeline.manifests import describe, write_manifest
from pipeline.parts import MESSAGE_KIND, finish, load_part, ref_from_dict
from pipeline.splits import Part
from pipeline.staging import StagedCopy
from pipeline.tables import enrichers, log_manifest, table_writer

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME, set by Terraform to the function key
# Validated once, at cold start: a bad deployment fails loudly with the variable's name.
settings = DatabaseSettings.from_env(DATASETS)
s3 = clients.s3()
sqs = clients.sqs()
dynamodb = clients.dynamodb()
enrichers_by_dataset = enrichers(s3, settings)
# Every failure is reported item by item, even when the whole batch failed: the time budget hands messages
# back that way (Powertools would otherwise raise, failing the invocation and releasing nothing).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
DATASETS_BY_NAME = {dataset.name: dataset for dataset in DATASETS}


def record_handler(record: SQSRecord, budget: Budget) -> None:
    message = json.loads(record.body)
    if not isinstance(message, dict) or message.get("kind") != MESSAGE_KIND:
        raise EventError(f"not a file-part message: {record.body[:200]!r}")
    dataset = DATASETS_BY_NAME[message["dataset"]]
    ref = ref_from_dict(message["ref"])
    part = Part.from_dict(message["part"])
    staged = StagedCopy.from_dict(message["staged"]) if message.get("staged") else None
    with logger.append_context_keys(source_key=ref.key, source_version=ref.version_label, part=part.index):
        try:
            enricher = enrichers_by_dataset.get(dataset)
        except ReferenceDataError as exc:
            # As in the database loader: not final, says why; the part is retried, then dead-lettered.
            failed = describe("database", "failed", dataset.name, ref, error=str(exc), parts_total=part.count)
            write_manifest(s3, settings.quarantine_bucket, ref, failed)
            log_manifest(logger, failed)
            raise
        load_part(
            s3,
            table_writer(dynamodb, settings, dataset),
            ref,
            dataset,
            part,
            quarantine_bucket=settings.quarantine_bucket,
            batch_size=settings.batch_size,
            curated_bucket=settings.datalake_bucket,
            budget=budget,
            staged=staged,
            enricher=enricher,
        )
        manifest = finish(s3, ref, dataset, part, quarantine_bucket=settings.quarantine_bucket, budget=budget)
        # Only the final manifest is written here (the planner wrote "in progress" before queueing the
        # parts), so it never goes back; parts finishing at once write the same one (it depends only on
        # the parts' results). Until then `pipeline status` counts the parts' results.
        if manifest.status != "in_progress":
            write_manifest(s3, settings.quarantine_bucket, ref, manifest)
            log_manifest(logger, manifest)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_within_budget(event, record_handler, processor, context, sqs)
