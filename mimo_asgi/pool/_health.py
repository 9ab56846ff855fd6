"""An account's health (pure): what a failed request says about its account, how long the account
rests, which account takes a request when none is free, and what the client is told when none
can. One rule for both pools (`AccountPool` in one process, `SharedAccountPool` across workers;
the Redis script applies the same rule with the figures given here).

Cooldowns steer traffic to *other* accounts. When every account serving a model is resting:

- after failures (5xx, in-band errors, timeouts, cuts): the request still goes upstream, on
  the account whose rest ends first; a lone account is never locked out by a guess;
- after rate limits (429) or a lack of quota (402): MiMo said so, and the client is told the
  same without asking again: 429 `rate_limit_exceeded` (`insufficient_quota` when every
  account is out of quota) with Retry-After;
- disabled (MiMo rejected the key): 503 `accounts_disabled`.

503 `accounts_busy` means capacity only: every lease of the accounts that could serve is in use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from ..translate.errors import OpenAIError

# What a failed request says about its account (`account_fault`).
DISABLE = "disable"     # MiMo rejected the account's key (401, 403): out until the key changes
RATE_LIMITED = "rate"   # 429: MiMo's rate or concurrency limit, or a Token Plan's exhausted quota
OUT_OF_QUOTA = "quota"  # 402: no balance (Token Plan also answers it to bursts)
FAILING = "fail"        # 5xx, in-band errors, timeouts, cut streams, an unreachable host
COOLDOWNS = (RATE_LIMITED, OUT_OF_QUOTA, FAILING)

MAX_PAUSE = 300.0        # seconds: the longest rest the backoff gives
STRIKES_TTL = 86_400.0   # seconds without a failure after which an account's failure count is forgotten
_BASE = {RATE_LIMITED: 10.0, OUT_OF_QUOTA: 10.0, FAILING: 2.0}


def _doubling(base: float) -> tuple[float, ...]:
    pauses = [base]
    while pauses[-1] < MAX_PAUSE:
        pauses.append(min(MAX_PAUSE, pauses[-1] * 2))
    return tuple(pauses)


_SCHEDULES = {kind: _doubling(base) for kind, base in _BASE.items()}


def account_fault(error: OpenAIError | None) -> str | None:
    """DISABLE, RATE_LIMITED, OUT_OF_QUOTA or FAILING when `error` is the account's (or its
    upstream's) doing, so that another account may well succeed; None for a success and for
    an error that is the request's own (a 400, a 404, MiMo's content filter). MiMo's status
    (`upstream_status`) decides; errors that carry none are judged by the status the client
    sees (a timeout's 504, an unreachable host's 502)."""
    if error is None:
        return None
    status = error.upstream_status if error.upstream_status is not None else error.status
    if status in (401, 403):
        return DISABLE
    if status == 429:
        return RATE_LIMITED
    if status == 402:
        return OUT_OF_QUOTA
    if status >= 500 or error.status >= 500:
        return FAILING
    return None


def pauses(error: OpenAIError, kind: str) -> tuple[float, ...]:
    """Seconds of rest after the 1st, 2nd, ... failure of `kind` in a row (the last one repeats):
    MiMo's Retry-After when it sent one, else a doubling from 10 s (rate limits, quota) or 2 s
    (failures), at most 300 s."""
    retry_after = error.headers.get("retry-after", "")
    if retry_after.isdigit():
        return (float(retry_after),)
    return _SCHEDULES[kind]


def cooldown_seconds(error: OpenAIError, strikes: int) -> float:
    """How long an account rests after `error`, its `strikes`-th failure in a row (1 or more).
    Defined for any count: the exponent stops growing once the pause reaches its cap."""
    schedule = pauses(error, account_fault(error) or FAILING)
    return schedule[min(max(strikes, 1), len(schedule)) - 1]


# -- choosing when no account is free, and refusing -----------------------------------------

FREE = "free"          # not disabled, not resting, below its limit
FULL = "full"          # every lease in use
DISABLED = "disabled"


class Standing(NamedTuple):
    """One serving account at the moment of a request: `state` is FREE, FULL, DISABLED or the
    kind of cooldown it rests after (RATE_LIMITED, OUT_OF_QUOTA, FAILING), with `seconds` of it
    left and whether it has `room` (a free lease) meanwhile."""

    state: str
    seconds: float = 0.0
    room: bool = True


def fallback(standings: Sequence[Standing]) -> int | None:
    """When no account is FREE: the index of the account that takes the request anyway (resting
    after failures, with room; the one whose rest ends first, the first of equals), or None."""
    chosen: int | None = None
    for i, s in enumerate(standings):
        if s.state == FAILING and s.room and (chosen is None or s.seconds < standings[chosen].seconds):
            chosen = i
    return chosen


def refusal(standings: Sequence[Standing]) -> OpenAIError:
    """What the client is told when no serving account can take its request (see the module)."""
    if all(s.state == DISABLED for s in standings):
        return OpenAIError(503, "MiMo rejected the key of every gateway account that serves this model (HTTP 401 "
                           "or 403); the gateway's operator has to fix its upstream accounts.",
                           type="server_error", code="accounts_disabled")
    if any(s.state in (FULL, FAILING, FREE) for s in standings):
        return OpenAIError(503, "All MiMo accounts for this model are busy (every lease is in use); retry shortly.",
                           type="server_error", code="accounts_busy", headers={"retry-after": "1"})
    resting = [s for s in standings if s.state in (RATE_LIMITED, OUT_OF_QUOTA)]
    retry_after = str(max(1, math.ceil(min(s.seconds for s in resting))))
    if all(s.state == OUT_OF_QUOTA for s in resting):
        return OpenAIError(429, f"Every gateway account that serves this model is out of MiMo quota (HTTP 402); "
                           f"retry after {retry_after} s.", type="insufficient_quota", code="insufficient_quota",
                           headers={"retry-after": retry_after})
    return OpenAIError(429, f"MiMo rate-limited every gateway account that serves this model; retry after "
                       f"{retry_after} s.", type="rate_limit_error", code="rate_limit_exceeded",
                       headers={"retry-after": retry_after})
