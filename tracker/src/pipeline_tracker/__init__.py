"""A client for the pipeline's ingest API, for apps and servers: ``Tracker`` batches records, sends them to
``POST /events/{dataset}`` with one idempotency key per batch, retries what is worth retrying, and spools
unsent batches to disk so that a killed process loses none of them."""

from pipeline_tracker.retry import RetryPolicy
from pipeline_tracker.spool import Batch, SpoolLockedError
from pipeline_tracker.tracker import BatchOutcome, RejectedRecord, Tracker, TrackerClosedError

__all__ = [
    "Batch",
    "BatchOutcome",
    "RejectedRecord",
    "RetryPolicy",
    "SpoolLockedError",
    "Tracker",
    "TrackerClosedError",
]
