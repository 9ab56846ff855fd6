"""What every example reads: MiMo accounts from MIMO_ASGI_CONFIG or MIMO_API_KEY, else demo mode."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx

from mimo_asgi import Account
from mimo_asgi.config import accounts_from_env, load_accounts

DEMO_MODEL_MAP = {"gpt-5*": "mimo-v2.5-pro", "o3": "mimo-v2-pro"}
logger = logging.getLogger("examples")


def mimo_accounts(env: Mapping[str, str]) -> tuple[list[Account], httpx.AsyncBaseTransport | None]:
    """The configured MiMo accounts and no transport, or (demo mode, with one warning) a demo
    account answered by the fake MiMo in this process."""
    accounts = load_accounts(env["MIMO_ASGI_CONFIG"], env) if env.get("MIMO_ASGI_CONFIG") else accounts_from_env(env)
    if accounts:
        return accounts, None
    from mimo_asgi.testing import FakeMimo

    logger.warning(
        "mimo_asgi demo mode: no MIMO_API_KEY or MIMO_ASGI_CONFIG is set, so MiMo requests are answered "
        "by a local fake MiMo upstream in this process. Set MIMO_API_KEY (and MIMO_MODEL_MAP) or "
        "MIMO_ASGI_CONFIG to use the real MiMo."
    )
    demo = Account("demo", "sk-demo", base_url="http://fake-mimo.local/v1", upstream="mimo", models=DEMO_MODEL_MAP)
    return [demo], httpx.ASGITransport(app=FakeMimo())
