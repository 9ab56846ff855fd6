"""A gateway's settings from a TOML file (`MIMO_ASGI_CONFIG`) or from the environment: its MiMo
accounts, and the Redis that several workers share (`redis_url`, `MIMO_ASGI_REDIS_URL`)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._routing import parse_model_map
from .accounts import Account

_ACCOUNT_KEYS = {"name", "api_key", "api_key_env", "base_url", "upstream", "models", "max_concurrency", "native_web_search"}


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True)
class GatewayConfig:
    """The MiMo accounts, and the Redis URL when workers share their state (else None)."""

    accounts: list[Account] = field(default_factory=list)
    redis_url: str | None = field(default=None, repr=False)  # may hold a password


def load_accounts(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> list[Account]:
    """Read `[[accounts]]` tables: name, api_key or api_key_env, base_url, upstream, models
    (a table of client name -> MiMo model, `*` wildcards), max_concurrency, native_web_search."""
    return load_config(path, env).accounts


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> GatewayConfig:
    """Read a TOML file: its `[[accounts]]` (see `load_accounts`) and an optional top-level
    `redis_url` (redis://, rediss:// or unix://), where the response store and the accounts'
    shared state live when several workers serve."""
    with Path(path).open("rb") as fh:
        data = tomllib.load(fh)
    tables = data.get("accounts")
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{path}: no [[accounts]] tables")
    return GatewayConfig([_account(t, i, env) for i, t in enumerate(tables)], _redis_url(data.get("redis_url"), path))


def config_from_env(env: Mapping[str, str] = os.environ) -> GatewayConfig:
    """The gateway's settings: the `MIMO_ASGI_CONFIG` file when set, else one account from
    `MIMO_API_KEY` (see `accounts_from_env`; none without it); `MIMO_ASGI_REDIS_URL`, when set,
    wins over the file's `redis_url`."""
    path = env.get("MIMO_ASGI_CONFIG", "").strip()
    config = load_config(path, env) if path else GatewayConfig(accounts_from_env(env))
    from_env = env.get("MIMO_ASGI_REDIS_URL", "").strip()
    if from_env:
        return GatewayConfig(config.accounts, _redis_url(from_env, "MIMO_ASGI_REDIS_URL"))
    return config


def _redis_url(value: Any, where: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip().lower().startswith(_REDIS_SCHEMES):
        # the value itself is not shown: a Redis URL may hold a password
        raise ValueError(f"{where}: redis_url must start with redis://, rediss:// or unix://")
    return value.strip()


def _account(table: Any, index: int, env: Mapping[str, str]) -> Account:
    where = f"accounts[{index}]"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: not a table")
    unknown = set(table) - _ACCOUNT_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    key = table.get("api_key")
    if key is None and "api_key_env" in table:
        key = env.get(table["api_key_env"], "").strip()
        if not key:
            raise ValueError(f"{where}: environment variable {table['api_key_env']} is empty")
    if not key:
        raise ValueError(f"{where}: api_key or api_key_env is required")
    return Account(
        name=str(table.get("name") or f"account-{index}"),
        api_key=str(key),
        base_url=table.get("base_url"),
        upstream=table.get("upstream", "mimo"),
        models=dict(table.get("models") or {}),
        max_concurrency=int(table.get("max_concurrency", 8)),
        native_web_search=table.get("native_web_search"),
    )


def accounts_from_env(env: Mapping[str, str] = os.environ) -> list[Account]:
    """One account from MIMO_API_KEY, MIMO_BASE_URL and MIMO_MODEL_MAP (`gpt-5*=mimo-v2.5-pro,o3=mimo-v2-pro`);
    empty when MIMO_API_KEY is unset."""
    key = env.get("MIMO_API_KEY", "").strip()
    if not key:
        return []
    return [Account(
        name="default",
        api_key=key,
        base_url=env.get("MIMO_BASE_URL", "").strip() or None,
        upstream="mimo",
        models=parse_model_map(env.get("MIMO_MODEL_MAP", "")),
        max_concurrency=int(env.get("MIMO_MAX_CONCURRENCY", "16")),
    )]
