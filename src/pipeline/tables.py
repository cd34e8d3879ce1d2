"""What the database and part loaders share: a table writer per dataset, the manifest log line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.config import DatabaseSettings
from pipeline.database import TableWriter
from pipeline.datasets import Dataset
from pipeline.enrichment import Enrichers, ReferenceStore
from pipeline.manifests import Manifest

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


def enrichers(s3: S3Client, settings: DatabaseSettings) -> Enrichers:
    """Each dataset's enricher, its reference tables read once per process (cold start's worth)."""
    return Enrichers(ReferenceStore(s3, settings.reference_bucket), settings.reference_versions)


def table_writer(client: DynamoDBClient, settings: DatabaseSettings, dataset: Dataset) -> TableWriter | None:
    """The writer of the dataset's table, or None when it has none (its records go to the curated zone)."""
    if not dataset.has_table:
        return None
    if dataset.key_field is None:
        raise ValueError(f"dataset {dataset.name!r} has no key field: it is not loaded into a table")
    return TableWriter(
        client=client,
        table=settings.tables[dataset.name],
        key_field=dataset.key_field,
        threads=settings.write_threads,
        strict_ordering=settings.strict_ordering,
    )


def log_manifest(logger: Logger, manifest: Manifest) -> None:
    logger.info(
        {"in_progress": "file in progress", "failed": "file not loaded"}.get(manifest.status, "file loaded"),
        extra={
            "dataset": manifest.dataset,
            "status": manifest.status,
            "records_read": manifest.records_read,
            "records_loaded": manifest.records_loaded,
            "records_rejected": manifest.records_rejected,
            "records_superseded": manifest.records_superseded,
            "parts": f"{manifest.parts_done}/{manifest.parts_total}",
            "error": manifest.error,
        },
    )
