"""Which requests are MiMo's, where they go, and under which model name (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

PAYG_BASE_URL = "https://api.xiaomimimo.com/v1"
TOKEN_PLAN_BASE_URL = "https://token-plan-cn.xiaomimimo.com/v1"
MIMO_HOST_SUFFIX = "xiaomimimo.com"
# Only `tp-` is unambiguous: MiMo's pay-as-you-go keys share `sk-` with OpenAI, and
# `sk-cp-` is MiniMax's Token Plan key format, not MiMo's.
MIMO_KEY_PREFIXES = ("tp-",)


def _host(url: str | None) -> str:
    if not url:
        return ""
    return (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()


def is_mimo_host(base_url: str | None) -> bool:
    host = _host(base_url)
    return host == MIMO_HOST_SUFFIX or host.endswith("." + MIMO_HOST_SUFFIX)


def is_token_plan(api_key: str, base_url: str | None) -> bool:
    """Both signals: a `tp-` key, or a token-plan host."""
    return api_key.startswith("tp-") or "token-plan" in _host(base_url)


def is_mimo_account(upstream: str | None, base_url: str | None, api_key: str) -> bool:
    """Account-level route: declared type, else a MiMo host, else (no base URL) a MiMo key prefix."""
    if upstream:
        return upstream.lower() == "mimo"
    if base_url:
        return is_mimo_host(base_url)
    return api_key.startswith(MIMO_KEY_PREFIXES)


def resolve_base_url(api_key: str, base_url: str | None) -> str:
    """An explicit base URL wins; otherwise `tp-` keys go to the token-plan host (a tp- key on the
    pay-as-you-go host is a 401), everything else to pay-as-you-go."""
    if base_url and base_url.strip():
        return base_url.strip()
    return TOKEN_PLAN_BASE_URL if api_key.startswith("tp-") else PAYG_BASE_URL


def chat_completions_url(base_url: str) -> str:
    """Join without doubling `/v1`: `.../v1` -> `.../v1/chat/completions`, bare host -> `/v1/...`."""
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if re.search(r"/v\d+$", base):
        return base + "/chat/completions"
    return base + "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    target: str
    specificity: tuple[int, int]  # (exact?, literal characters); higher wins


def compile_model_map(mapping: Mapping[str, str]) -> tuple[_Rule, ...]:
    """Case-insensitive rules with `*` wildcards, most specific first (exact, then most literal
    characters, then declaration order)."""
    rules = []
    for order, (source, target) in enumerate(mapping.items()):
        src = source.strip().lower()
        regex = "^" + ".*".join(re.escape(part) for part in src.split("*")) + "$"
        exact = "*" not in src
        rules.append((exact, len(src.replace("*", "")), -order, _Rule(re.compile(regex), target.strip(), (int(exact), len(src)))))
    rules.sort(key=lambda r: (r[0], r[1], r[2]), reverse=True)
    return tuple(r[3] for r in rules)


def map_model(rules: tuple[_Rule, ...], model: str) -> str | None:
    name = model.strip().lower()
    for rule in rules:
        if rule.pattern.match(name):
            return rule.target
    return None


def parse_model_map(text: str) -> dict[str, str]:
    """`gpt-5*=mimo-v2.5-pro,o3=mimo-v2-pro` -> a mapping (the MIMO_MODEL_MAP format)."""
    out: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"model map entry {pair.strip()!r} is not source=target")
        out[source.strip()] = target.strip()
    return out
