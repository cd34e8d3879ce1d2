"""Lambda handler: validate the records of files whose dataset has a schema, and load the good ones into its
table (if it has one) and the curated zone; plan big files into parts for the part loader."""

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
from pipeline.datasets import DATASETS, Dataset, route
from pipeline.enrichment import ReferenceDataError
from pipeline.events import object_refs
from pipeline.loader import load_file
from pipeline.manifests import describe, final_manifest, write_manifest
from pipeline.parts import layout, plan_file
from pipeline.sources import pin_version, read_uploader
from pipeline.staging import stage
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


def writer_for(dataset: Dataset) -> TableWriter | None:
    return table_writer(dynamodb, settings, dataset)


def record_handler(record: SQSRecord, budget: Budget) -> None:
    for announced in object_refs(record.body):
        dataset = route(announced.key)
        if not dataset.loads_database or dataset.key_field is None:
            continue  # no schema (unclassified): the data lake loader has it
        ref = pin_version(s3, announced)
        with logger.append_context_keys(source_key=ref.key, source_version=ref.version_label):
            if final_manifest(s3, settings.quarantine_bucket, "database", ref) is not None:
                # A replay or duplicate delivery of a version already loaded: nothing to write.
                logger.info("already loaded", extra={"dataset": dataset.name})
                continue
            # Once per file version, after the replay check (a replay costs no HeadObject): the items,
            # curated rows and manifest carry it, and a big file's parts get it in their messages.
            ref = read_uploader(s3, ref)
            try:
                # Before any part is planned: a file is enriched from its reference data or not loaded.
                enricher = enrichers_by_dataset.get(dataset)
            except ReferenceDataError as exc:
                # Not the file's fault: a manifest that is not final says why; the message is retried
                # (then dead-lettered: redrive it once the reference data is there).
                failed = describe("database", "failed", dataset.name, ref, error=str(exc))
                write_manifest(s3, settings.quarantine_bucket, ref, failed)
                log_manifest(logger, failed)
                raise
            how = layout(s3, ref, dataset, settings.part_bytes) if settings.parts_queue_url else "whole"
            if how != "whole":
                assert settings.parts_queue_url is not None
                staged = None
                if how == "stage":
                    staged = stage(s3, ref, dataset, bucket=settings.quarantine_bucket, budget=budget)
                manifest = plan_file(
                    s3,
                    sqs,
                    ref,
                    dataset,
                    parts_queue_url=settings.parts_queue_url,
                    part_bytes=settings.part_bytes,
                    quarantine_bucket=settings.quarantine_bucket,
                    staged=staged,
                    budget=budget,
                )
                log_manifest(logger, manifest)
                continue
            manifest = load_file(
                s3,
                writer_for(dataset),
                ref,
                dataset,
                quarantine_bucket=settings.quarantine_bucket,
                curated_bucket=settings.datalake_bucket,
                batch_size=settings.batch_size,
                budget=budget,
                enricher=enricher,
            )
            write_manifest(s3, settings.quarantine_bucket, ref, manifest)
            log_manifest(logger, manifest)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_within_budget(event, record_handler, processor, context, sqs)
