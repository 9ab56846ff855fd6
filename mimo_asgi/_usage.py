"""Token counts read from MiMo's `usage`, in one place (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

TOKEN_KINDS = ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "total_tokens")


def _count(value: Any) -> int:
    """A token count from upstream JSON: a non-negative int, or 0 for anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)
    return 0


def _details(usage: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    details = usage.get(key)
    return details if isinstance(details, dict) else {}  # parsed JSON: a dict or nothing


def token_counts(usage: Any) -> dict[str, int]:
    """MiMo's chat-completions `usage` as the five counts every consumer reads (the Responses
    `usage` object, the log line, metrics, `on_usage`). Absent, null or malformed members
    (MiMo often sends `prompt_tokens_details: null`) count as 0: usage never fails a request."""
    u = usage if isinstance(usage, dict) else {}
    input_tokens, output_tokens = _count(u.get("prompt_tokens")), _count(u.get("completion_tokens"))
    return {
        "input_tokens": input_tokens,
        "cached_tokens": _count(_details(u, "prompt_tokens_details").get("cached_tokens")),
        "output_tokens": output_tokens,
        "reasoning_tokens": _count(_details(u, "completion_tokens_details").get("reasoning_tokens")),
        "total_tokens": _count(u.get("total_tokens")) or input_tokens + output_tokens,
    }
