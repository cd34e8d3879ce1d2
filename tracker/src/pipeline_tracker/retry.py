"""When to try a batch again, and how long to wait first.

Exponential backoff with full jitter (a uniformly random wait between 0 and the capped exponential), so that
many clients failing together do not come back together. A ``Retry-After`` answer wins over the backoff: the
server said when it will take the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

#: Answers worth another try with the same batch: throttled, or the server (or a gateway before it) failed.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Answers that say the caller's credentials are the problem, not the batch: the batch is kept for later.
AUTH_STATUSES = frozenset({401, 403})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` tries per round (a round: one flush, or the start of a process with a spool); the n-th
    retry waits ``random() * min(max_delay, base_delay * 2 ** (n - 1))`` seconds, or ``Retry-After`` seconds
    (at most ``max_retry_after``) when the server sent one."""

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, retry: int, random: Callable[[], float]) -> float:
        """The wait before the ``retry``-th retry (1 for the first), full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return float(random() * ceiling)

    def delay(self, retry: int, random: Callable[[], float], retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(retry, random)


def is_retryable(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delay-seconds or an HTTP date, as urllib3 parses it); None if absent or
    unreadable (then the backoff applies)."""
    if not value:
        return None
    try:
        return float(Retry().parse_retry_after(value))
    except (InvalidHeader, ValueError, OverflowError):  # OverflowError: a date far out of range
        return None
