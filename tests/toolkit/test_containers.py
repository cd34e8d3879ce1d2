"""The container invoker: the Lambda Runtime API served to the function's real container image.

The protocol tests need no engine. The others (marked ``containers``) start the function image, built for
real by the ``function_image`` fixture, plus a test layer of small handlers (``container_handlers/``), and
check each way an invocation ends as Lambda ends it: an answer, an exception, a timeout, an out-of-memory
kill, a crashed runtime, a failed init.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from pipeline_toolkit import containers
from pipeline_toolkit.containers import ContainerInvoker, RuntimeApi, _Pending, remove_runtime_containers
from pipeline_toolkit.context import LocalLambdaContext

HANDLERS = Path(__file__).with_name("container_handlers")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"


def context(timeout: int = 10) -> LocalLambdaContext:
    return LocalLambdaContext(
        function_name="fn", invoked_function_arn=ARN, memory_limit_in_mb=256, timeout_seconds=timeout
    )


# --- the Runtime API, spoken by hand -------------------------------------------------------------------


def _call(api: RuntimeApi, method: str, path: str, body: bytes | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(
        f"http://{api.address}{containers.API_PREFIX}{path}", data=body, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    server = RuntimeApi()
    try:
        yield server
    finally:
        server.close()


def test_next_hands_out_the_event_with_lambdas_headers_and_the_response_settles_it(api: RuntimeApi) -> None:
    assert api.address.startswith("127.0.0.1:")
    pending = _Pending("req-1", b'{"a": 1}', 1_900_000_000_000, ARN)
    api.hand_over(pending)

    status, headers, body = _call(api, "GET", "/invocation/next")
    assert status == 200
    assert json.loads(body) == {"a": 1}
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1900000000000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == ARN
    assert headers["Lambda-Runtime-Trace-Id"].startswith("Root=1-")
    assert headers["Content-Length"] == str(len(body))
    assert api.first_next.is_set()

    assert _call(api, "POST", "/invocation/someone-else/response", b"{}")[0] == 400
    assert _call(api, "POST", "/invocation/req-1/response", b'{"batchItemFailures": []}')[0] == 202
    assert pending.done.is_set()
    assert pending.outcome is not None
    assert pending.outcome.ok
    assert pending.outcome.payload == {"batchItemFailures": []}


def test_an_error_post_fails_the_invocation_with_its_type(api: RuntimeApi) -> None:
    pending = _Pending("req-2", b"{}", 0, ARN)
    api.hand_over(pending)
    _call(api, "GET", "/invocation/next")
    error = json.dumps({"errorMessage": "bad input", "errorType": "ValueError", "stackTrace": []}).encode()

    assert _call(api, "POST", "/invocation/req-2/error", error)[0] == 202
    assert pending.outcome is not None
    assert (pending.outcome.ok, pending.outcome.error_type, pending.outcome.error_message) == (
        False,
        "ValueError",
        "bad input",
    )


def test_an_init_error_is_kept_for_the_invocation_waiting_on_it(api: RuntimeApi) -> None:
    body = json.dumps({"errorMessage": "cannot import", "errorType": "Runtime.ImportModuleError"}).encode()

    assert _call(api, "POST", "/init/error", body)[0] == 202
    assert api.init_error == {"errorMessage": "cannot import", "errorType": "Runtime.ImportModuleError"}
    assert _call(api, "GET", "/no/such/path")[0] == 404


# --- the real image ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handlers_image(function_image: str) -> Iterator[str]:
    """The function image plus the test handlers in its task root (classic builder: COPY only)."""
    tag = f"s3-ingest-pipeline/lambda-test-handlers:{uuid.uuid4().hex[:12]}"
    context_tar = io.BytesIO()
    with tarfile.open(fileobj=context_tar, mode="w") as tar:
        dockerfile = f"FROM {function_image}\nCOPY container_handlers/ /var/task/\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for path in sorted(HANDLERS.glob("*.py")):
            tar.add(path, arcname=f"container_handlers/{path.name}")
    context_tar.seek(0)
    client = docker.from_env()
    client.images.build(fileobj=context_tar, custom_context=True, tag=tag, rm=True)
    try:
        yield tag
    finally:
        client.images.remove(tag, force=True)


@pytest.fixture
def make_invoker(handlers_image: str) -> Iterator[Any]:
    made: list[ContainerInvoker] = []
    runtime_id = containers.new_runtime_id()

    def make(handler: str, *, memory_mb: int = 256, timeout: int = 10) -> ContainerInvoker:
        invoker = ContainerInvoker(
            handlers_image,
            handler=handler,
            function_name="fn",
            environment={"AWS_LAMBDA_FUNCTION_NAME": "fn", "TEST_SETTING": "from the deployment"},
            memory_mb=memory_mb,
            timeout_seconds=timeout,
            container_name=f"test-{runtime_id}-{len(made)}",
            runtime_id=runtime_id,
            log_stream=io.StringIO(),
        )
        made.append(invoker)
        return invoker

    try:
        yield make
    finally:
        for invoker in made:
            invoker.close()
        assert remove_runtime_containers(runtime_id) == 0, "an invoker left a container behind"


@pytest.mark.containers
def test_the_function_answers_and_stays_warm_between_invocations(make_invoker: Any) -> None:
    invoker = make_invoker("lambda_handlers.echo")

    first = invoker.invoke({"n": 1}, context())
    second = invoker.invoke({"n": 2}, context())

    assert first.ok, first
    assert second.ok, second
    assert first.payload["event"] == {"n": 1}
    assert second.payload["event"] == {"n": 2}
    assert first.payload["setting"] == "from the deployment"  # the deployed environment reached it
    assert first.payload["function_name"] == "fn"
    assert 0 < first.payload["remaining_ms"] <= 10_000  # the deadline travelled in Lambda-Runtime-Deadline-Ms
    assert first.payload["request_id"] != second.payload["request_id"]
    assert first.payload["pid"] == second.payload["pid"]  # one warm environment
    assert invoker.starts == 1
    assert len(invoker.init_durations) == 1  # one cold start


@pytest.mark.containers
def test_an_exception_fails_the_invocation_and_keeps_the_environment(make_invoker: Any) -> None:
    invoker = make_invoker("lambda_handlers.fail")

    failed = invoker.invoke({}, context())

    assert (failed.ok, failed.error_type, failed.error_message) == (False, "ValueError", "bad input")
    assert not invoker.invoke({}, context()).ok
    assert invoker.starts == 1


@pytest.mark.containers
def test_an_invocation_past_the_timeout_ends_the_container_and_the_next_gets_a_fresh_one(
    make_invoker: Any,
) -> None:
    invoker = make_invoker("lambda_handlers.sleep", timeout=3)
    warm = invoker.invoke({"seconds": 0}, context(timeout=3))
    assert warm.ok, warm
    first_container = invoker.container.id

    timed_out = invoker.invoke({"seconds": 60}, context(timeout=3))

    assert not timed_out.ok
    assert timed_out.error_type == containers.TIMED_OUT
    assert timed_out.error_message == "Task timed out after 3.00 seconds"
    assert invoker.container is None
    with pytest.raises(docker.errors.NotFound):
        docker.from_env().containers.get(first_container)
    again = invoker.invoke({"seconds": 0}, context(timeout=3))
    assert again.ok, again
    assert invoker.starts == 2


@pytest.mark.containers
def test_the_memory_size_is_a_hard_limit_and_going_past_it_is_out_of_memory(make_invoker: Any) -> None:
    invoker = make_invoker("lambda_handlers.hog", memory_mb=128)

    fits = invoker.invoke({"mib": 16}, context())
    too_much = invoker.invoke({"mib": 512}, context())

    assert fits.ok, fits
    assert not too_much.ok
    assert too_much.error_type == containers.OUT_OF_MEMORY
    assert invoker.invoke({"mib": 16}, context()).ok  # a fresh environment
    assert invoker.starts == 2


@pytest.mark.containers
def test_a_crashed_runtime_fails_the_invocation_and_is_replaced(make_invoker: Any) -> None:
    invoker = make_invoker("lambda_handlers.crash")

    crashed = invoker.invoke({}, context())

    assert not crashed.ok
    assert crashed.error_type == containers.EXITED
    assert "exit code 3" in (crashed.error_message or "")
    assert not invoker.invoke({}, context()).ok
    assert invoker.starts == 2


@pytest.mark.containers
def test_a_handler_that_cannot_be_imported_fails_at_init(make_invoker: Any) -> None:
    invoker = make_invoker("broken_handlers.handler")

    failed = invoker.invoke({}, context())

    assert not failed.ok
    assert "this module cannot be imported" in (failed.error_message or "")


@pytest.mark.containers
def test_containers_left_by_a_killed_worker_are_removed_by_their_runtimes_label(handlers_image: str) -> None:
    client = docker.from_env()
    runtime_id = containers.new_runtime_id()
    other_runtime = containers.new_runtime_id()
    for owner in (runtime_id, other_runtime):
        client.containers.run(
            handlers_image,
            entrypoint=["sleep", "60"],
            labels={containers.RUNTIME_LABEL: owner},
            network_mode="host",
            detach=True,
        )
    try:
        assert remove_runtime_containers(runtime_id) == 1
        assert remove_runtime_containers(runtime_id) == 0
    finally:
        assert remove_runtime_containers(other_runtime) == 1  # never another runtime's


def test_the_first_next_ends_the_init_phase_and_a_new_environment_starts_cold_again(api: RuntimeApi) -> None:
    # The bookkeeping of init durations (no engine): the cold flag flips once per environment.
    assert not api.first_next.is_set()
    threading.Thread(target=_call, args=(api, "GET", "/invocation/next"), daemon=True).start()
    assert api.first_next.wait(5)
    api.abandon()
    assert not api.first_next.is_set()
