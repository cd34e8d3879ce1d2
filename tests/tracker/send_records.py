"""A process that tracks records, for the tests that kill it (SIGKILL) and start it again on the same spool.

    python send_records.py URL SPOOL_DIR DATASET COUNT PREFIX BATCH_RECORDS

Tracks COUNT users records (``user_id`` ``PREFIX-<n>``), prints ``tracked``, then waits for a line on stdin
before closing (a test kills it while it waits, with batches in flight, sealed and still in the journal);
COUNT 0 only resends what the spool holds. On close it prints one JSON line per outcome. The token is
``TRACKER_TOKEN`` from the environment.
"""

from __future__ import annotations

import json
import os
import sys

from pipeline_tracker import RetryPolicy, Tracker


def main() -> None:
    url, spool_dir, dataset, count, prefix, batch_records = sys.argv[1:7]
    tracker = Tracker(
        url,
        os.environ["TRACKER_TOKEN"],
        dataset=dataset,
        spool_dir=spool_dir,
        max_batch_records=int(batch_records),
        linger_seconds=None,
        retry=RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=0.5),
    )
    for n in range(int(count)):
        tracker.track(
            {
                "user_id": f"{prefix}-{n}",
                "first_name": "Kill",
                "last_name": "Test",
                "email": f"{prefix}-{n}@example.com",
                "gender": "female",
                "age": 30 + n % 50,
            }
        )
    print("tracked", flush=True)
    if int(count):
        sys.stdin.readline()
    for outcome in tracker.close():
        line = {"state": outcome.state, "key": outcome.idempotency_key, "records": outcome.records}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
