"""The dataset registry: edit this file to teach the pipeline about your own files.

Each entry says which keys belong to the dataset (file-name globs, optional prefix), how to read them and,
when it has a schema, which table its validated records are loaded into (the environment variable naming
the table is set by Terraform on the database loader). Every file, matched or not, is copied to the lake.
"""

from __future__ import annotations

from pipeline.routing import Dataset
from pipeline.schemas.users import UserRecord

USERS = Dataset(
    name="users",
    patterns=("users*.csv", "users*.jsonl", "users*.ndjson", "users*.json"),
    schema=UserRecord,
    key_field="user_id",
    table_env="PIPELINE_USERS_TABLE",
)

# Lake-only: kept in the data lake, partitioned, but not loaded into a table.
EVENTS = Dataset(name="events", patterns=("events*.jsonl", "events*.ndjson", "events*.json"))

DATASETS: tuple[Dataset, ...] = (USERS, EVENTS)
