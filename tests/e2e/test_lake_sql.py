"""End to end: files dropped in the landing bucket, then SQL over the curated zone they produced.

The same named queries the Terraform catalogue gives Athena run unchanged, through `pipeline query`'s own
code (DuckDB over the lake), against what the deployed functions wrote.
"""

from __future__ import annotations

import json

import pytest
from tests.e2e.support import Pipeline, csv_users, unique

from pipeline_toolkit import query

pytestmark = pytest.mark.e2e


def sql(pipeline: Pipeline, text: str) -> query.Result:
    return query.run_sql(
        text,
        filesystem=query.s3_filesystem(pipeline.clients.environment, pipeline.clients.region),
        datalake_bucket=pipeline.outputs.datalake_bucket,
        quarantine_bucket=pipeline.outputs.quarantine_bucket,
    )


def test_dropped_files_are_queryable_and_every_named_query_runs(pipeline: Pipeline) -> None:
    run = unique()
    domain = f"{run}.example"
    key = f"{run}/users.csv"
    pipeline.process(
        key,
        csv_users(run, [("1", f"one@{domain}", 31), ("2", f"two@{domain}", 32), ("3", "bad-email", 33)]),
    )
    # A newer version moves user 2 to another domain: the merge rule must count it there only.
    pipeline.process(
        key,
        csv_users(run, [("1", f"one@{domain}", 31), ("2", f"two@new.{domain}", 32), ("3", "bad-email", 33)]),
    )
    event = {"event_id": f"{run}-e1", "type": "click", "user_id": f"{run}-1"}
    event["timestamp"] = "2024-05-01T10:00:00Z"
    pipeline.process(f"{run}/events.jsonl", json.dumps(event).encode() + b"\n")

    # Every row written is in the lake (two versions of two users), with its lineage.
    rows = sql(
        pipeline,
        f"SELECT user_id, email, email_domain, age FROM users WHERE source_key = '{key}'"
        " ORDER BY user_id, email",
    )
    assert [tuple(row) for row in rows.rows] == [
        (f"{run}-1", f"one@{domain}", domain, 31),
        (f"{run}-1", f"one@{domain}", domain, 31),
        (f"{run}-2", f"two@{domain}", domain, 32),
        (f"{run}-2", f"two@new.{domain}", f"new.{domain}", 32),
    ]
    assert sql(pipeline, f"SELECT event_type FROM events WHERE event_id = '{run}-e1'").rows == [("click",)]

    named = query.named_queries()
    assert set(named) == {"users_per_email_domain", "loads_per_day", "rejects_per_reason"}
    results = {name: sql(pipeline, text) for name, text in named.items()}  # each runs, unchanged

    per_domain = dict(results["users_per_email_domain"].rows)
    assert per_domain[domain] == 1  # user 1 only: user 2's current version is in the new domain
    assert per_domain[f"new.{domain}"] == 1
    loads = results["loads_per_day"]
    assert loads.columns == ["ingest_date", "dataset", "files", "records"]
    assert {row[1] for row in loads.rows} >= {"users", "events"}
    reasons = {row[0]: row[1] for row in results["rejects_per_reason"].rows}
    assert any(reason.startswith("email") for reason in reasons)  # the bad email, in both versions
