"""Function configuration from environment variables, validated once at cold start.

A missing or malformed variable fails the cold start with a message that names it, instead of a
``KeyError`` deep inside the first invocation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.datasets import Dataset
from pipeline.enrichment import parse_versions

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class ConfigError(RuntimeError):
    """The function's environment is missing a variable or holds a bad value."""


def require(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set: it must name the {what}")
    if not pattern.match(value):
        raise ConfigError(f"environment variable {name}={value!r} is not a valid {what} name")
    return value


def positive_int(env: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ConfigError(f"environment variable {name}={raw!r} must be a whole number from 1 to {maximum}")
    return int(raw)


_TRUE, _FALSE = {"1", "true", "yes"}, {"", "0", "false", "no"}


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ConfigError(f"environment variable {name}={raw!r} must be true or false")
    return raw in _TRUE


@dataclass(frozen=True, slots=True)
class DatalakeSettings:
    datalake_bucket: str
    quarantine_bucket: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DatalakeSettings:
        env = os.environ if env is None else env
        return cls(
            datalake_bucket=require(env, "PIPELINE_DATALAKE_BUCKET", BUCKET_NAME, "data lake S3 bucket"),
            quarantine_bucket=require(env, "PIPELINE_QUARANTINE_BUCKET", BUCKET_NAME, "quarantine S3 bucket"),
        )


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    quarantine_bucket: str
    tables: Mapping[str, str]  # dataset name -> DynamoDB table name
    datalake_bucket: str  # the curated zone (curated/ in the data lake bucket)
    batch_size: int = 1000
    write_threads: int = 4
    strict_ordering: bool = False
    # Files bigger than part_bytes go to the part loader through this queue (unset: every file loads whole).
    parts_queue_url: str | None = None
    part_bytes: int = 16 << 20
    # Reference data for enrichment: the bucket holding reference/ (the data lake) and the versions to use.
    reference_bucket: str | None = None
    reference_versions: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, datasets: tuple[Dataset, ...], env: Mapping[str, str] | None = None
    ) -> DatabaseSettings:
        env = os.environ if env is None else env
        tables = {
            dataset.name: require(env, dataset.table_env, _TABLE_NAME, f"DynamoDB table for {dataset.name}")
            for dataset in datasets
            if dataset.table_env is not None
        }
        return cls(
            quarantine_bucket=require(env, "PIPELINE_QUARANTINE_BUCKET", BUCKET_NAME, "quarantine S3 bucket"),
            tables=tables,
            datalake_bucket=require(env, "PIPELINE_DATALAKE_BUCKET", BUCKET_NAME, "data lake S3 bucket"),
            batch_size=positive_int(env, "PIPELINE_BATCH_SIZE", 1000, 100_000),
            write_threads=positive_int(env, "PIPELINE_WRITE_THREADS", 4, 32),
            strict_ordering=_flag(env, "PIPELINE_STRICT_ORDERING"),
            parts_queue_url=env.get("PIPELINE_PARTS_QUEUE_URL", "").strip() or None,
            part_bytes=positive_int(env, "PIPELINE_PART_BYTES", 16 << 20, 5 << 30),
            reference_bucket=env.get("PIPELINE_DATALAKE_BUCKET", "").strip() or None,
            reference_versions=_versions(env, "PIPELINE_REFERENCE_VERSIONS"),
        )


def _versions(env: Mapping[str, str], name: str) -> dict[str, str]:
    try:
        return parse_versions(env.get(name, ""))
    except ValueError as exc:
        raise ConfigError(f"environment variable {name}: {exc} (expected table=v1,other=v2)") from None
