"""Will the account's Lambda quotas hold the functions a plan deploys? New AWS accounts get reduced ones.

``make plan`` (and ``make deploy``, before it applies) call :func:`check_plan`: it reads what the saved plan
would deploy (each function's memory, each enabled SQS event source mapping's ``maximum_concurrency``) and
the account's settings in the region (Lambda ``GetAccountSettings``), and returns warnings, never errors: a
quota can be raised, and the deploy itself would succeed.

- **Concurrency.** ``GetAccountSettings`` reports the account's quota (``ConcurrentExecutions``: 1,000 by
  default, as low as 10 on a new account) and the pool that functions without reserved concurrency, such as
  these, share (``UnreservedConcurrentExecutions``). The mappings may run up to the sum of their maximum
  concurrencies at once; above the pool, invocations are throttled, their messages return to the queue and
  count as receives, and a message received ``maxReceiveCount`` times goes to the dead-letter queue.
- **Memory.** No API reports the account's memory ceiling. New accounts have been given 3,008 MB instead of
  10,240 MB, alongside their reduced concurrency, and then CreateFunction refuses a larger ``memory_size``.
  So a function above 3,008 MB is flagged when the concurrency quota is below the default, the sign of a
  new account's profile. A heuristic: said so in the warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

#: Lambda's default concurrency quota; an account below it is on a reduced (new account) profile.
DEFAULT_CONCURRENT_EXECUTIONS = 1000
#: The memory ceiling new accounts have been reported to get (MB). Not in any API: see the module docstring.
REDUCED_MEMORY_CEILING_MB = 3008


@dataclass(frozen=True, slots=True)
class FunctionSizing:
    """What one planned function asks of the account: its memory, and the most concurrent invocations its
    enabled SQS event source mappings may drive (0 when it has none)."""

    name: str
    memory_mb: int
    maximum_concurrency: int


@dataclass(frozen=True, slots=True)
class LambdaLimits:
    """The account's Lambda concurrency in one region, as ``GetAccountSettings`` reports it."""

    concurrent_executions: int
    unreserved_concurrent_executions: int


def _function_name(value: Any) -> str:
    """A function's name from a name or an ARN (a mapping read back from AWS holds the function's ARN)."""
    text = str(value)
    if ":function:" in text:
        text = text.split(":function:", 1)[1].split(":", 1)[0]  # drop a version or alias qualifier
    return text


def sizing_from_plan(plan: Mapping[str, Any]) -> list[FunctionSizing]:
    """Every function the plan (``terraform show -json`` of a saved plan) leaves deployed, with its sizing."""
    memory: dict[str, int] = {}
    concurrency: dict[str, int] = {}
    for change in plan.get("resource_changes", []):
        after = (change.get("change") or {}).get("after")
        if not after:  # deleted
            continue
        if change.get("type") == "aws_lambda_function":
            memory[_function_name(after["function_name"])] = int(after.get("memory_size") or 128)
        elif change.get("type") == "aws_lambda_event_source_mapping" and after.get("enabled", True):
            scaling = after.get("scaling_config") or [{}]
            # Without a maximum, an SQS mapping may scale up to the whole unreserved pool: count it as that.
            most = scaling[0].get("maximum_concurrency") or DEFAULT_CONCURRENT_EXECUTIONS
            name = _function_name(after.get("function_name"))
            concurrency[name] = concurrency.get(name, 0) + int(most)
    return [FunctionSizing(name, mb, concurrency.get(name, 0)) for name, mb in sorted(memory.items())]


def read_limits(client: LambdaClient) -> LambdaLimits:
    """The account's concurrency quota and unreserved pool (``GetAccountSettings``)."""
    limit = client.get_account_settings()["AccountLimit"]
    total = int(limit.get("ConcurrentExecutions", DEFAULT_CONCURRENT_EXECUTIONS))
    return LambdaLimits(total, int(limit.get("UnreservedConcurrentExecutions", total)))


def quota_warnings(sizing: Sequence[FunctionSizing], limits: LambdaLimits, region: str = "") -> list[str]:
    """What would not fit the account, one sentence each; empty when everything does."""
    where = f" in {region}" if region else ""
    warnings: list[str] = []
    total = sum(function.maximum_concurrency for function in sizing)
    if total > limits.unreserved_concurrent_executions:
        each = ", ".join(f"{f.name} {f.maximum_concurrency}" for f in sizing if f.maximum_concurrency)
        warnings.append(
            f"the SQS event source mappings may run {total} invocations at once ({each}), but this "
            f"account has {limits.unreserved_concurrent_executions} unreserved concurrent executions{where} "
            f"(quota {limits.concurrent_executions}): invocations will be throttled, and messages received "
            "too often dead-lettered. Ask for more (Service Quotas, AWS Lambda, 'Concurrent executions'), "
            "or lower maximum_concurrency in function_settings (at least 2 each)."
        )
    if limits.concurrent_executions < DEFAULT_CONCURRENT_EXECUTIONS:
        for function in sizing:
            if function.memory_mb > REDUCED_MEMORY_CEILING_MB:
                warnings.append(
                    f"{function.name} asks for {function.memory_mb} MB, and this account's concurrency quota "
                    f"({limits.concurrent_executions}{where}) is a new account's reduced one, whose memory "
                    f"ceiling has been {REDUCED_MEMORY_CEILING_MB} MB: CreateFunction may refuse it. "
                    "(No API reports the ceiling: this is a heuristic.) Lower memory_size in "
                    "function_settings, or ask AWS support to raise the account's quotas."
                )
    return warnings


def check_plan(plan: Mapping[str, Any], client: LambdaClient, region: str = "") -> list[str]:
    """:func:`quota_warnings` for a saved plan; a warning that nothing was checked when the account's
    settings cannot be read (no permission, or an emulator without the API)."""
    sizing = sizing_from_plan(plan)
    if not sizing:
        return []
    try:
        limits = read_limits(client)
    except (ClientError, BotoCoreError) as exc:
        return [
            f"could not read the account's Lambda settings (GetAccountSettings: {exc}): quotas not checked"
        ]
    return quota_warnings(sizing, limits, region)
