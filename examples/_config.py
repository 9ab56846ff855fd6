"""What every example reads: MiMo accounts from MIMO_ASGI_CONFIG or MIMO_API_KEY (else demo mode),
and MIMO_ASGI_REDIS_URL (or `redis_url` in the config file) when several workers share their state."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mimo_asgi import Account, SharedAccountPool
from mimo_asgi.config import config_from_env

DEMO_MODEL_MAP = {"gpt-5*": "mimo-v2.5-pro", "o3": "mimo-v2-pro"}
logger = logging.getLogger("examples")


@dataclass
class Setup:
    """The accounts, the transport (the in-process fake MiMo in demo mode, else None), the Redis
    URL (None: one process's state) and the seal key."""

    accounts: list[Account]
    transport: httpx.AsyncBaseTransport | None = None
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    seal_key: str | bytes = field(default=b"", repr=False)

    def shared_pool(self) -> SharedAccountPool | None:
        """With Redis: the accounts in a `SharedAccountPool` on it (leases, cooldowns, disabled
        accounts and affinity hold across workers and machines); None without."""
        return SharedAccountPool(self.accounts, self.redis_url) if self.redis_url else None

    def state(self) -> dict[str, Any]:
        """The middleware's options that say where state lives: with Redis, the response store
        and the accounts' pool on it; without, `accounts=` and the store in this process. And
        the seal key, the same on every worker (`seal_key_for`)."""
        if self.redis_url:
            return {"resolver": self.shared_pool(), "store": self.redis_url, "seal_key": self.seal_key}
        return {"accounts": self.accounts, "seal_key": self.seal_key}


def seal_key_for(accounts: Sequence[Account], env: Mapping[str, str]) -> str | bytes:
    """MIMO_ASGI_SEAL_KEY, else the key the middleware derives from the account keys for
    `accounts=`: the same on every worker and machine serving the same accounts, unknown to
    clients. Derived here too because with `resolver=` (a shared pool) the middleware does not
    see the keys, and reasoning sealed by one worker must open on the next."""
    explicit = env.get("MIMO_ASGI_SEAL_KEY", "")
    if explicit:
        return explicit
    return hashlib.sha256("\n".join(sorted({a.key for a in accounts})).encode()).digest()


def setup(env: Mapping[str, str]) -> Setup:
    """The configured accounts, or (demo mode, with one warning) a demo account answered by the
    fake MiMo in this process; and where their state lives (see the module)."""
    config = config_from_env(env)
    if not config.redis_url:
        _warn_when_several_workers(env)
    if config.accounts:
        return Setup(config.accounts, None, config.redis_url, seal_key_for(config.accounts, env))
    from mimo_asgi.testing import FakeMimo

    logger.warning(
        "mimo_asgi demo mode: no MIMO_API_KEY or MIMO_ASGI_CONFIG is set, so MiMo requests are answered "
        "by a local fake MiMo upstream in this process. Set MIMO_API_KEY (and MIMO_MODEL_MAP) or "
        "MIMO_ASGI_CONFIG to use the real MiMo."
    )
    demo = Account("demo", "sk-demo", base_url="http://fake-mimo.local/v1", upstream="mimo", models=DEMO_MODEL_MAP)
    return Setup([demo], httpx.ASGITransport(app=FakeMimo()), config.redis_url, seal_key_for([demo], env))


def _warn_when_several_workers(env: Mapping[str, str]) -> None:
    workers = worker_count(env)
    if workers > 1:
        logger.warning(
            "mimo_asgi: this is one of %d workers and MIMO_ASGI_REDIS_URL is not set, so stored responses and "
            "account limits are per process: a previous_response_id stored by another worker is not found, and "
            "each worker allows max_concurrency requests per account on its own. Set MIMO_ASGI_REDIS_URL (or "
            "redis_url in the MIMO_ASGI_CONFIG file) to share them.", workers)


def worker_count(env: Mapping[str, str] = os.environ) -> int:
    """How many worker processes serve this app, when that can be told (else 1).

    uvicorn, gunicorn and hypercorn run several workers as child processes of one server
    process, started with `--workers N` (`-w N`): read on the parent's command line (Linux
    `/proc`). Without the flag, a worker started by such a server (a multiprocessing child,
    or a gunicorn worker) takes WEB_CONCURRENCY, the default worker count of uvicorn and
    gunicorn. A single process (`uvicorn app` without --workers, or with --reload) has none.
    """
    argv = _parent_argv()
    server = next((name for part in argv[:3] for name in _SERVERS if name in part), None)
    flagged = _workers_flag(argv) if server else None
    if flagged is not None:
        return flagged
    if multiprocessing.parent_process() is not None or server == "gunicorn":
        value = env.get("WEB_CONCURRENCY", "").strip()
        return int(value) if value.isdigit() else 1
    return 1


_SERVERS = ("uvicorn", "gunicorn", "hypercorn")


def _parent_argv() -> list[str]:
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _workers_flag(argv: Sequence[str]) -> int | None:
    for i, part in enumerate(argv):
        value: str | None = None
        if part in ("--workers", "-w") and i + 1 < len(argv):
            value = argv[i + 1]
        elif part.startswith("--workers="):
            value = part.partition("=")[2]
        elif part.startswith("-w") and part[2:].isdigit():
            value = part[2:]
        if value is not None and value.isdigit():
            return int(value)
    return None
