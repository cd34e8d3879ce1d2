"""``make demo``: the whole pipeline on this machine, from a fresh emulator to a summary, in one command.

Starts the emulator, applies the real stack to it, starts the function runtime, drops the sample files,
waits until each is processed (manifests from both stages, or a dead letter), prints what happened to each
file with the table's item count and each dead-letter queue's depth, and stops everything it started.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from pipeline_toolkit import project
from pipeline_toolkit.embedded import EmbeddedStack, embedded_stack
from pipeline_toolkit.gateway.client import ApiClient
from pipeline_toolkit.gateway.local import create_demo_user, sign_in, start_local_api
from pipeline_toolkit.outputs import Session
from pipeline_toolkit.render import render_status
from pipeline_toolkit.report import FileStatus, wait_until_settled
from pipeline_toolkit.upload import drop_files

# Sample files dropped by the demo, in this order (the README in samples/ says what each shows).
SAMPLE_FILES = ("users.csv", "users.jsonl", "users-bad-rows.csv", "events.jsonl", "users-broken.csv")
# Sent again through the ingest API, as a signed-in user would: one as a batch of records, one as an upload.
API_BATCH_SAMPLE, API_BATCH_DATASET = "events.jsonl", "events"
API_UPLOAD_SAMPLE = "users.jsonl"


def sample_paths(samples_dir: Path | None = None) -> list[Path]:
    samples_dir = project.samples_dir() if samples_dir is None else samples_dir
    paths = [samples_dir / name for name in SAMPLE_FILES]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError("sample file(s) missing: " + ", ".join(missing))
    return paths


def through_the_api(
    stack: EmbeddedStack, state_dir: Path, paths: list[Path], say: Callable[[str], None]
) -> dict[tuple[str, str], float]:
    """As a signed-in user would: one batch of records sent to the API, one file uploaded with a form."""
    if not stack.outputs.user_pool_id:
        return {}
    batch = next((path for path in paths if path.name == API_BATCH_SAMPLE), None)
    upload = next((path for path in paths if path.name == API_UPLOAD_SAMPLE), None)
    if batch is None or upload is None:
        return {}
    api = start_local_api(stack.environment, stack.outputs, log_dir=state_dir / "logs")
    try:
        username, password = create_demo_user(stack.environment, stack.outputs)
        client = ApiClient(api.url, sign_in(stack.environment, stack.outputs, username, password))
        landed: dict[tuple[str, str], float] = {}
        sent = client.send_batch(API_BATCH_DATASET, batch.read_bytes())
        at = time.monotonic()
        say(
            f"API {api.url}: sent {batch.name} as a batch of {sent['records_received']} record(s) "
            f"({sent['records_accepted']} accepted), landed as {sent['key']}"
        )
        landed[(sent["key"], _latest_version(stack, sent["key"]))] = at
        key = client.upload(upload)
        at = time.monotonic()
        say(f"API {api.url}: uploaded {upload.name} with a presigned form, landed as {key}")
        landed[(key, _latest_version(stack, key))] = at
        return landed
    finally:
        api.stop()


def _latest_version(stack: EmbeddedStack, key: str) -> str:
    versions = stack.clients.s3.list_object_versions(Bucket=stack.outputs.landing_bucket, Prefix=key)
    return next(item["VersionId"] for item in versions.get("Versions", []) if item["Key"] == key)


def run_demo(
    console: Console,
    *,
    state_dir: Path,
    samples: list[Path] | None = None,
    wait_seconds: float = 180.0,
) -> int:
    """Run the demo; 0 when every file was processed and no message was dead-lettered."""
    paths = samples if samples is not None else sample_paths()
    demo_started = time.monotonic()

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - demo_started:6.1f}s[/dim] {message}")

    with embedded_stack(state_dir, say=say) as stack:
        stack.session().save(state_dir)
        try:
            say(
                f"stack up: landing bucket [bold]{stack.outputs.landing_bucket}[/bold]; "
                f"dropping {len(paths)} files"
            )
            dropped = drop_files(stack.clients.s3, stack.outputs.landing_bucket, paths, console=console)

            dropped_at = {(item.key, item.version_id): item.dropped_at for item in dropped}
            dropped_at.update(through_the_api(stack, state_dir, paths, say))

            def settled(file: FileStatus, at: float) -> None:
                latency = at - dropped_at[(file.key, file.version)]
                say(f"{file.key}: {file.outcome}, {latency:.2f}s from drop to processed")

            status, settled_at = wait_until_settled(
                stack.clients, stack.outputs, list(dropped_at), timeout=wait_seconds, on_settled=settled
            )
            console.print()
            render_status(status, console)
            latencies = sorted(at - dropped_at[file_version] for file_version, at in settled_at.items())
            unsettled = [key for key, version in dropped_at if (key, version) not in settled_at]
            if latencies:
                say(
                    f"drop to processed (both stages): median {statistics.median(latencies):.2f}s, "
                    f"slowest {latencies[-1]:.2f}s over {len(latencies)} file(s); "
                    f"terraform apply took {stack.timings.get('apply', 0):.1f}s"
                )
            if unsettled:
                console.print(f"[red]not processed within {wait_seconds:.0f}s: {', '.join(unsettled)}[/red]")
                console.print(f"[red]worker logs: {state_dir / 'logs'}[/red]")
        finally:
            Session.remove(state_dir)
    total = time.monotonic() - demo_started
    console.print(f"demo finished in {total:.1f}s; everything it started is stopped.")
    dead = sum(status.dlq_depths.values())
    return 0 if not unsettled and not dead else 1
