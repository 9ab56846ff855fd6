"""Accounts from a TOML file (`MIMO_ASGI_CONFIG`) or from the environment."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._routing import parse_model_map
from .accounts import Account

_ACCOUNT_KEYS = {"name", "api_key", "api_key_env", "base_url", "upstream", "models", "max_concurrency", "native_web_search"}


def load_accounts(path: str | os.PathLike[str], env: Mapping[str, str] = os.environ) -> list[Account]:
    """Read `[[accounts]]` tables: name, api_key or api_key_env, base_url, upstream, models
    (a table of client name -> MiMo model, `*` wildcards), max_concurrency, native_web_search."""
    with Path(path).open("rb") as fh:
        data = tomllib.load(fh)
    tables = data.get("accounts")
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{path}: no [[accounts]] tables")
    return [_account(t, i, env) for i, t in enumerate(tables)]


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
