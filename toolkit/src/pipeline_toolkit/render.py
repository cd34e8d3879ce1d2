"""Terminal rendering of a :class:`~.report.StackStatus` (demo summary, ``pipeline status``)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from pipeline_toolkit.report import FileStatus, StackStatus

MAX_REASONS_SHOWN = 3
VERSION_CHARS = 8
OUTCOME_STYLES = {
    "loaded": "green",
    "partial": "yellow",
    "quarantined": "red",
    "in progress": "cyan",
}


def _reasons(file: FileStatus) -> Text:
    text = Text()
    manifests = [m for m in (file.database, file.datalake) if m is not None]
    errors = [m.error for m in manifests if m.error]
    for error in dict.fromkeys(errors):
        text.append(f"{error}\n", style="red")
    shown = 0
    for manifest in manifests:
        for record in manifest.first_errors:
            if shown == MAX_REASONS_SHOWN:
                break
            text.append(f"line {record.line}: {'; '.join(record.reasons)}\n", style="yellow")
            shown += 1
    rejected = file.database.records_rejected if file.database else 0
    if rejected > shown and shown:
        text.append(f"... and {rejected - shown} more (see the rejects file)\n", style="dim")
    text.rstrip()
    return text


def _short(version: str) -> str:
    return version if len(version) <= VERSION_CHARS else version[:VERSION_CHARS] + "…"


def _count(manifest_value: int | None) -> str:
    return "-" if manifest_value is None else str(manifest_value)


def files_table(status: StackStatus) -> Table:
    table = Table(title="Files", show_lines=True, expand=False)
    table.add_column("file", overflow="fold")
    table.add_column("dataset")
    table.add_column("lake key", overflow="fold")
    table.add_column("loaded", justify="right")
    table.add_column("rejected", justify="right")
    table.add_column("outcome")
    table.add_column("first reasons", overflow="fold")
    for file in status.files:
        database = file.database
        outcome = file.outcome
        table.add_row(
            Text.assemble(file.key, "\n", (f"version {_short(file.version)}", "dim")),
            file.dataset,
            file.lake_key or "-",
            _count(database.records_loaded if database else None),
            _count(database.records_rejected if database else None),
            Text(outcome, style=OUTCOME_STYLES.get(outcome, "red")),
            _reasons(file),
        )
    return table


def totals(status: StackStatus) -> Text:
    text = Text()
    items = "unknown" if status.table_items is None else str(status.table_items)
    text.append(f"Table {status.table_name}: {items} item(s)\n", style="bold")
    for key, depth in status.dlq_depths.items():
        style = "red bold" if depth else "green"
        text.append(f"Dead-letter queue of {key}: {depth} message(s)\n", style=style)
    for key, depth in status.queue_depths.items():
        if depth:
            text.append(f"Queue of {key}: {depth} message(s) waiting or in flight\n", style="cyan")
    text.rstrip()
    return text


def render_status(status: StackStatus, console: Console) -> None:
    if status.files:
        console.print(files_table(status))
    else:
        console.print("No file in the landing bucket yet: drop one with `pipeline drop FILE`.")
    console.print(Group(totals(status)))
