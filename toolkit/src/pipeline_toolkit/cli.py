"""``pipeline``: the dev toolkit's command (never imported by the handlers).

Only ``demo`` and ``local up`` start the embedded emulator, so only they import moto: talking to AWS or
LocalStack (``status``, ``drop``, ``local deploy``, ``local runtime``) works without it.

pipeline demo                   the whole pipeline on an embedded emulator, then a summary
pipeline local up               keep an embedded stack running; prints how to point aws/boto3 at it
pipeline local runtime          only the function runtime, against the target in the environment
pipeline drop FILE...           upload files to the landing bucket
pipeline status [KEY...]        what happened to each dropped file
pipeline query SQL | --named N  SQL over the data lake (DuckDB; on AWS, Athena)
pipeline get-user --id|--email  a user from the table, as JSON
pipeline send DATASET FILE|-    records (JSON Lines or a JSON array) to the ingest API, through the tracker
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from pipeline_toolkit import localstack, recovery
from pipeline_toolkit.clients import Clients
from pipeline_toolkit.deploy import DeployError
from pipeline_toolkit.outputs import DEFAULT_STATE_DIR, NoSessionError, Session, StackOutputs
from pipeline_toolkit.render import render_status
from pipeline_toolkit.report import collect
from pipeline_toolkit.runtime import LocalRuntime
from pipeline_toolkit.terraform import TerraformError
from pipeline_toolkit.upload import drop_files

LANDING_BUCKET_ENV = "PIPELINE_LANDING_BUCKET"


class UsageError(Exception):
    """A command line that cannot be acted on; the message says why."""


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``with`` block stops what it started."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _parse_invoker_urls(values: Sequence[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise UsageError(f"--invoker-url wants FUNCTION=URL, got {value!r}")
        urls[name] = url
    return urls


# -- demo ------------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from pipeline_toolkit.demo import run_demo  # noqa: PLC0415 - starts moto: imported only by this command

    samples = [Path(path) for path in args.files] if args.files else None
    return run_demo(console, state_dir=args.state_dir, samples=samples, wait_seconds=args.wait)


# -- local up / local runtime ----------------------------------------------------------------------------


def print_environment(session: Session, console: Console, state_dir: Path) -> None:
    outputs = session.outputs
    exports = "\n".join(
        f"export {name}={shlex.quote(value)}" for name, value in session.environment().items()
    )
    console.print("[bold]The stack is up.[/bold] Point the aws CLI and boto3 at it:\n")
    console.print(exports, highlight=False, soft_wrap=True)
    console.print(
        f"\n  aws s3 cp samples/users.csv s3://{outputs.landing_bucket}/\n"
        f"  aws s3 ls --recursive s3://{outputs.datalake_bucket}/\n"
        f"  aws dynamodb scan --table-name {outputs.table_name} --select COUNT\n",
        highlight=False,
    )
    console.print(
        f"buckets: landing [bold]{outputs.landing_bucket}[/bold], data lake {outputs.datalake_bucket}, "
        f"quarantine {outputs.quarantine_bucket}; table {outputs.table_name}",
        highlight=False,
    )
    console.print(
        "In another terminal: `pipeline drop FILE...`, `pipeline status` "
        f"(they read {state_dir / 'session.json'}).\n"
        f"Function logs: {state_dir / 'logs'}. Ctrl-C stops everything.",
        highlight=False,
    )


def cmd_local_up(args: argparse.Namespace, console: Console) -> int:
    # Imported here: they start moto and servers, only this command needs them.
    from pipeline_toolkit.embedded import embedded_stack, local_variables  # noqa: PLC0415
    from pipeline_toolkit.gateway.local import (  # noqa: PLC0415
        create_demo_user,
        free_port,
        page_origin,
        start_local_api,
        start_local_page,
    )

    _stop_on_sigterm()
    runtime_options = {
        "concurrency": args.concurrency,
        "invoker_urls": _parse_invoker_urls(args.invoker_url),
        "retry_after_seconds": args.retry_after,
    }

    def say(message: str) -> None:
        console.print(f"[dim]{message}[/dim]")

    # The page's port is chosen before the apply: the API's CORS settings name the page's origin, as on AWS.
    page_port = free_port()
    variables = local_variables({"api_cors_allow_origins": [page_origin(page_port)]})
    with embedded_stack(
        args.state_dir,
        variables=variables,
        with_runtime=not args.no_runtime,
        runtime_options=runtime_options,
        say=say,
    ) as stack:
        session = stack.session()
        session.save(args.state_dir)
        api = page = None
        try:
            print_environment(session, console, args.state_dir)
            if stack.outputs.user_pool_id and not args.no_api:
                api = start_local_api(stack.environment, stack.outputs, log_dir=args.state_dir / "logs")
                page = start_local_page(stack.environment, stack.outputs, api, port=page_port)
                # `pipeline send` in another terminal finds the gateway here.
                dataclasses.replace(session, gateway_url=api.url).save(args.state_dir)
                username, password = create_demo_user(stack.environment, stack.outputs)
                console.print(
                    f"Ingest API (local gateway, JWT-checked): [bold]{api.url}[/bold]\n"
                    f"Upload page: [bold]{page.url}[/bold]\n"
                    f"Demo user: {username} / {password} (user pool {stack.outputs.user_pool_id}, "
                    f"client {stack.outputs.user_pool_client_id})\n"
                    f"Send records: PIPELINE_PASSWORD=... pipeline send users FILE --username {username}",
                    highlight=False,
                )
            threading.Event().wait()  # until Ctrl-C or SIGTERM
        except KeyboardInterrupt:
            console.print("\nstopping...")
        finally:
            if page is not None:
                page.stop()
            if api is not None:
                api.stop()
            Session.remove(args.state_dir)
    return 0


def cmd_local_runtime(args: argparse.Namespace, console: Console) -> int:
    """The runtime alone, against whatever the environment points at (LocalStack, a `local up` session...)."""
    _stop_on_sigterm()
    environment = dict(os.environ)
    runtime = LocalRuntime.discover(
        environment,
        args.function or None,
        concurrency=args.concurrency,
        invoker_urls=_parse_invoker_urls(args.invoker_url),
        log_dir=args.log_dir,
        poll_enabled_mappings=args.poll_enabled,
        retry_after_seconds=args.retry_after,
    )
    if not runtime.workers:
        console.print("[red]nothing to poll: no (disabled) SQS event source mapping found[/red]")
        return 1
    with runtime:
        for worker in runtime.workers:
            console.print(
                f"polling {worker.mapping.queue.name} -> {worker.function.name} ({worker.function.handler})"
            )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("\nstopping: finishing the batches in hand...")
    return 0


def cmd_local_deploy(args: argparse.Namespace, console: Console) -> int:
    """Apply the stack to the target in the environment (LocalStack); see :mod:`.localstack`."""
    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise UsageError("AWS_ENDPOINT_URL is not set: `local deploy` is for an emulator such as LocalStack")
    outputs = localstack.deploy(
        dict(os.environ),
        args.state_dir,
        managed_sqs_polling=args.managed_polling,
        push_images=not args.no_push,
        say=lambda message: console.print(f"[dim]{message}[/dim]", highlight=False),
    )
    console.print(
        f"deployed: landing bucket {outputs.landing_bucket}; outputs and env files in {args.state_dir}",
        highlight=False,
    )
    return 0


# -- drop / status ---------------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> tuple[Clients, StackOutputs | None]:
    """Clients and outputs: from ``--outputs`` and the environment, else from the running local session."""
    if getattr(args, "outputs", None):
        return Clients(), StackOutputs.from_terraform(json.loads(Path(args.outputs).read_text()))
    try:
        session = Session.load(args.state_dir)
    except NoSessionError:
        if (
            os.environ.get("AWS_ENDPOINT_URL")
            or getattr(args, "bucket", None)
            or os.environ.get(LANDING_BUCKET_ENV)
        ):
            return Clients(), None
        raise
    return Clients(session.environment()), session.outputs


def cmd_drop(args: argparse.Namespace, console: Console) -> int:
    clients, outputs = _target(args)
    bucket = (
        args.bucket or (outputs.landing_bucket if outputs else None) or os.environ.get(LANDING_BUCKET_ENV)
    )
    if not bucket:
        raise UsageError(
            f"no landing bucket: pass --bucket, set {LANDING_BUCKET_ENV}, or run `pipeline local up`"
        )
    paths = [Path(path) for path in args.files]
    keys = [args.key] if args.key else None
    if keys and len(paths) != 1:
        raise UsageError("--key names one file's key: give exactly one FILE with it")
    dropped = drop_files(
        clients.s3,
        bucket,
        paths,
        prefix=args.prefix,
        keys=keys,
        console=console,
        show_progress=not args.quiet,
    )
    for item in dropped:
        console.print(
            f"s3://{bucket}/{item.key} version {item.version_id} ({item.size} bytes)", highlight=False
        )
    return 0


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    clients, outputs = _target(args)
    if outputs is None:
        raise UsageError("status needs the stack's outputs: run `pipeline local up`, or pass --outputs FILE")
    status = collect(clients, outputs, args.keys or None)
    if args.json:
        document = {
            "files": [
                {
                    "key": file.key,
                    "version": file.version,
                    "dataset": file.dataset,
                    "outcome": file.outcome,
                    "lake_key": file.lake_key,
                    "datalake": file.datalake.model_dump() if file.datalake else None,
                    "database": file.database.model_dump() if file.database else None,
                    "dead_lettered": sorted(file.dead_lettered),
                }
                for file in status.files
            ],
            "table": {"name": status.table_name, "items": status.table_items},
            "dlq_depths": status.dlq_depths,
            "queue_depths": status.queue_depths,
        }
        console.print_json(json.dumps(document))
    else:
        render_status(status, console)
    return 0


def cmd_send(args: argparse.Namespace, console: Console) -> int:
    from pipeline_toolkit import send  # noqa: PLC0415 - the tracker and ijson load only for this command

    session: Session | None = None
    outputs: StackOutputs | None = None
    environment: dict[str, str] = dict(os.environ)
    if args.outputs:
        outputs = StackOutputs.from_terraform(json.loads(Path(args.outputs).read_text()))
    else:
        try:
            session = Session.load(args.state_dir)
            outputs, environment = session.outputs, session.environment()
        except NoSessionError:
            if not args.url:
                raise
    try:
        url, token = send.api_access(
            url=args.url,
            token=args.token,
            username=args.username,
            gateway_url=session.gateway_url if session else "",
            outputs=outputs,
            environment=environment,
        )
    except send.AccessError as error:
        raise UsageError(str(error)) from None
    # stdin stays open (it is not ours to close); a file is closed by the with below.
    opened = (
        contextlib.nullcontext(sys.stdin.buffer) if args.file == "-" else Path(args.file).open("rb")  # noqa: SIM115 - entered right below
    )
    with opened as stream:
        report = send.send_records(
            send.read_records(stream),
            url=url,
            token=token,
            dataset=args.dataset,
            spool_dir=args.spool_dir,
            run_id=args.run_id,
            max_batch_records=args.batch_records,
            max_batch_bytes=args.batch_bytes,
        )
    for line in send.describe(report, args.dataset, url, args.spool_dir):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    return 0 if report.ok else 1


# -- recovery --------------------------------------------------------------------------------------------


def cmd_redrive(args: argparse.Namespace, console: Console) -> int:
    clients, outputs = _target(args)
    if outputs is None:
        raise UsageError("redrive needs the stack's outputs: run `pipeline local up`, or pass --outputs FILE")
    if args.function not in outputs.queues:
        raise UsageError(f"no function {args.function!r}; the stack has {', '.join(sorted(outputs.queues))}")
    queue = outputs.queues[args.function]
    result = recovery.redrive(clients.sqs, queue.dlq_url, queue.url, method=args.method)
    if result.method == "move-task":
        console.print(f"{args.function}: message move task started ({result.task_handle})", highlight=False)
    else:
        console.print(f"{args.function}: {result.moved} message(s) moved back to its queue", highlight=False)
    return 0


def cmd_replay(args: argparse.Namespace, console: Console) -> int:
    clients, outputs = _target(args)
    if outputs is None or not outputs.topic_arn:
        raise UsageError("replay needs the stack's outputs: run `pipeline local up`, or pass --outputs FILE")
    key, _, version = args.target.rpartition("@") if "@" in args.target else (args.target, "", "")
    ref = recovery.replay(
        clients.s3,
        clients.sns,
        landing_bucket=outputs.landing_bucket,
        quarantine_bucket=outputs.quarantine_bucket,
        topic_arn=outputs.topic_arn,
        key=key,
        version=version or None,
        region=clients.region,
    )
    console.print(f"announced s3://{ref.bucket}/{ref.key} version {ref.version_label} again", highlight=False)
    return 0


# -- query / get-user (the catalogue and the hot tier) ---------------------------------------------------


def cmd_query(args: argparse.Namespace, console: Console) -> int:
    from pipeline_toolkit import query  # noqa: PLC0415 - DuckDB and pyarrow load only for this command

    named = query.named_queries()
    if args.list:
        for name, text in named.items():
            console.print(f"[bold]{name}[/bold]  {query.describe(text)}", highlight=False)
        return 0
    if bool(args.sql) == bool(args.named):
        raise UsageError("give either SQL or --named NAME (see --list)")
    if args.named and args.named not in named:
        raise UsageError(f"no named query {args.named!r}; there are {', '.join(named)}")
    clients, outputs = _target(args)
    if outputs is None:
        raise UsageError("query needs the stack's outputs: run `pipeline local up`, or pass --outputs FILE")
    try:
        result = query.run_sql(
            named[args.named] if args.named else args.sql,
            filesystem=query.s3_filesystem(clients.environment, clients.region),
            datalake_bucket=outputs.datalake_bucket,
            quarantine_bucket=outputs.quarantine_bucket,
        )
    except query.QueryError as error:
        console.print(f"[red]pipeline query: {error}[/red]", highlight=False)
        return 1
    rendered = query.render(result, args.format)
    if isinstance(rendered, str):
        sys.stdout.write(rendered)  # exactly the CSV or JSON, no console wrapping
    else:
        console.print(rendered)
    return 0


def cmd_get_user(args: argparse.Namespace, console: Console) -> int:
    from pipeline_toolkit import lookup  # noqa: PLC0415

    clients, outputs = _target(args)
    if outputs is None:
        raise UsageError(
            "get-user needs the stack's outputs: run `pipeline local up`, or pass --outputs FILE"
        )
    found: Any
    if args.id is not None:
        found = lookup.get_user(clients.dynamodb, outputs.table_name, args.id)
        what = f"user_id {args.id!r}"
    else:
        found = lookup.get_users_by_email(clients.dynamodb, outputs.table_name, args.email) or None
        what = f"email {lookup.normalise_email(args.email)!r}"
    if found is None:
        print(f"pipeline get-user: no user with {what} in {outputs.table_name}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(found, indent=2, ensure_ascii=False) + "\n")
    return 0


def _add_catalog_commands(commands: Any) -> None:
    outputs_help = "JSON of `terraform output -json` for a stack other than the local one"
    query = commands.add_parser(
        "query",
        help="SQL over the data lake with DuckDB (emulators; on AWS use Athena: the stack's workgroup)",
        description="Run SQL with DuckDB over the data lake of the target in the environment (the embedded "
        "emulator, LocalStack), reading S3 through AWS_ENDPOINT_URL. Tables as in the Glue catalogue: "
        "users, events (the curated zone, ingest_date a column) and rejects. Without an endpoint it reads S3 "
        "itself from this machine; on AWS, Athena (outputs athena_workgroup, named_queries) is the way.",
    )
    query.add_argument("sql", nargs="?", metavar="SQL", help='e.g. "SELECT count(*) FROM users"')
    query.add_argument("--named", metavar="NAME", help="run a named query of the catalogue (see --list)")
    query.add_argument("--list", action="store_true", help="list the named queries")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table", help="default: table")
    query.add_argument("--outputs", help=outputs_help)
    query.set_defaults(run=cmd_query)

    get_user = commands.add_parser(
        "get-user",
        help="one user from the table by id, or every user with an email (the email index), as JSON",
    )
    key = get_user.add_mutually_exclusive_group(required=True)
    key.add_argument("--id", help="user_id: prints the item, a JSON object")
    key.add_argument("--email", help="email: prints every user with it (several may share one), a JSON array")
    get_user.add_argument("--outputs", help=outputs_help)
    get_user.set_defaults(run=cmd_get_user)


# -- parser ----------------------------------------------------------------------------------------------


def _add_recovery_commands(commands: Any) -> None:
    redrive = commands.add_parser("redrive", help="move a function's dead letters back to its queue")
    redrive.add_argument("function", metavar="FUNCTION", help="function key, e.g. database-loader")
    redrive.add_argument(
        "--method",
        choices=["auto", "move-task", "copy"],
        default="auto",
        help="SQS's message-move task, or receive-send-delete (auto: the task where the target has it)",
    )
    redrive.add_argument(
        "--outputs", help="JSON of `terraform output -json` for a stack other than the local one"
    )
    redrive.set_defaults(run=cmd_redrive)

    replay = commands.add_parser("replay", help="announce a landed file version to every loader again")
    replay.add_argument("target", metavar="KEY[@VERSION]", help="landing key, optionally @version id")
    replay.add_argument(
        "--outputs", help="JSON of `terraform output -json` for a stack other than the local one"
    )
    replay.set_defaults(run=cmd_replay)


def _add_send_command(commands: Any) -> None:
    send = commands.add_parser(
        "send",
        help="send records (JSON Lines or a JSON array) to the ingest API, batched, retried, spooled",
        description="Send the records of FILE (or stdin: -) to POST /events/DATASET through the tracker "
        "client: batches with one idempotency key each, retried on network errors, 429 and 5xx, never "
        "twice landed. The API address is --url, else the running `pipeline local up` session's gateway, "
        "else the stack's api_endpoint (--outputs). Exit 0 when every record was accepted, 1 otherwise.",
    )
    send.add_argument("dataset", metavar="DATASET", help="users, events, ...")
    send.add_argument("file", metavar="FILE", help="JSON Lines or a JSON array; - for stdin")
    send.add_argument("--url", help="the ingest API's base URL")
    send.add_argument("--token", help="a Cognito id or access token (or $PIPELINE_TOKEN)")
    send.add_argument(
        "--username", help="sign in as this user (password from $PIPELINE_PASSWORD, else a prompt)"
    )
    send.add_argument(
        "--spool-dir",
        type=Path,
        default=None,
        help="keep unsent batches here; a later run with the same directory resends them",
    )
    send.add_argument(
        "--run-id",
        default="",
        help="part of every batch's idempotency key: a rerun with the same id (the default: none) lands "
        "nothing twice; a new id sends the same records again",
    )
    send.add_argument("--batch-records", type=int, default=500, help="records per batch at most (500)")
    send.add_argument("--batch-bytes", type=int, default=512 * 1024, help="bytes per batch at most (524288)")
    send.add_argument(
        "--outputs", help="JSON of `terraform output -json` for a stack other than the local one"
    )
    send.set_defaults(run=cmd_send)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline", description="Run and inspect the data pipeline locally."
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where local state lives: Terraform state, worker logs, the running session (default: .local)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the whole pipeline on an embedded emulator and summarise")
    demo.add_argument("files", nargs="*", help="files to drop instead of the samples")
    demo.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the files (default 180)")
    demo.set_defaults(run=cmd_demo)

    local = commands.add_parser("local", help="the embedded target")
    local_commands = local.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    invoker_help = "invoke FUNCTION over HTTP at a Runtime Interface Emulator (repeatable)"
    retry_help = (
        "retry a failed message after SECONDS instead of the queue's visibility timeout "
        "(a local shortcut; Lambda waits for the visibility timeout)"
    )

    up = local_commands.add_parser("up", help="start an embedded stack and keep it running until Ctrl-C")
    up.add_argument("--concurrency", type=int, default=1, help="worker processes per queue (default 1)")
    up.add_argument("--invoker-url", action="append", default=[], metavar="FUNCTION=URL", help=invoker_help)
    up.add_argument("--retry-after", type=int, default=None, metavar="SECONDS", help=retry_help)
    up.add_argument("--no-runtime", action="store_true", help="deploy only; run no function")
    up.add_argument(
        "--no-api",
        action="store_true",
        help="do not serve the ingest API (the local gateway) or the upload page on 127.0.0.1",
    )
    up.set_defaults(run=cmd_local_up)

    runtime = local_commands.add_parser("runtime", help="poll the queues of the target in the environment")
    runtime.add_argument(
        "--function", action="append", default=[], help="function name (repeatable; default all)"
    )
    runtime.add_argument("--concurrency", type=int, default=1, help="worker processes per queue (default 1)")
    runtime.add_argument(
        "--invoker-url", action="append", default=[], metavar="FUNCTION=URL", help=invoker_help
    )
    runtime.add_argument("--retry-after", type=int, default=None, metavar="SECONDS", help=retry_help)
    runtime.add_argument(
        "--log-dir", type=Path, default=None, help="write worker logs here instead of the terminal"
    )
    runtime.add_argument(
        "--poll-enabled",
        action="store_true",
        help="also poll mappings that are enabled (the target polls those)",
    )
    runtime.set_defaults(run=cmd_local_runtime)

    deploy = local_commands.add_parser(
        "deploy",
        help="apply the stack to the target in the environment (LocalStack), write outputs and env files",
    )
    deploy.add_argument(
        "--managed-polling",
        action="store_true",
        help="let the target poll the queues and run the images itself",
    )
    deploy.add_argument(
        "--no-push",
        action="store_true",
        help="build and push nothing: the functions run the digests the target's ECR already holds for the "
        "current content",
    )
    deploy.set_defaults(run=cmd_local_deploy)

    drop = commands.add_parser("drop", help="upload files to the landing bucket")
    drop.add_argument("files", nargs="+", metavar="FILE")
    drop.add_argument(
        "--bucket", help=f"landing bucket (default: the running local stack's, or ${LANDING_BUCKET_ENV})"
    )
    drop.add_argument("--prefix", default="", help="key prefix (a folder in the landing bucket)")
    drop.add_argument("--key", help="the object key, for a single FILE")
    drop.add_argument(
        "--outputs", help="JSON of `terraform output -json` for a stack other than the local one"
    )
    drop.add_argument("--quiet", action="store_true", help="no progress bar")
    drop.set_defaults(run=cmd_drop)

    status = commands.add_parser("status", help="what happened to each dropped file")
    status.add_argument("keys", nargs="*", metavar="KEY", help="only these landing keys")
    status.add_argument(
        "--outputs", help="JSON of `terraform output -json` for a stack other than the local one"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=cmd_status)

    _add_send_command(commands)
    _add_recovery_commands(commands)
    _add_catalog_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Piped or in CI there is no terminal width to read; rich would assume 80 and fold the summary table.
    console = Console() if sys.stdout.isatty() else Console(width=160, soft_wrap=True)
    try:
        code: int = args.run(args, console)
    except (UsageError, NoSessionError, FileNotFoundError, DeployError, TerraformError) as error:
        console.print(f"[red]pipeline: {error}[/red]", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
