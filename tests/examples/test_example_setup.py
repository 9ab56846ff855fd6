"""examples/_config.py: where the examples' state lives, their seal key, and telling workers apart."""

from __future__ import annotations

import logging

import pytest

from examples import _config
from mimo_asgi import Account, MimoMiddleware, ReasoningSealer, SharedAccountPool

KEYS = ["sk-test-one-0123456789", "sk-test-two-0123456789"]


def _accounts():
    return [Account(f"a{i}", key, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"}) for i, key in enumerate(KEYS)]


def test_without_redis_the_state_is_this_process():
    found = _config.setup({"MIMO_API_KEY": KEYS[0]})
    options = found.state()
    assert set(options) == {"accounts", "seal_key"} and found.shared_pool() is None


def test_with_redis_the_store_and_the_pool_live_there():
    found = _config.setup({"MIMO_API_KEY": KEYS[0], "MIMO_ASGI_REDIS_URL": "redis://127.0.0.1:1/0"})
    options = found.state()
    assert options["store"] == "redis://127.0.0.1:1/0" and isinstance(options["resolver"], SharedAccountPool)
    assert [a.name for a in options["resolver"].accounts] == ["default"]


def test_the_derived_seal_key_is_the_one_the_middleware_derives_for_accounts():
    """A blob sealed by a one-process gateway (accounts=) opens on a scaled-out one (resolver=)."""
    accounts = _accounts()
    by_middleware = MimoMiddleware(lambda scope, receive, send: None, accounts=accounts, api_key=None).runtime.sealer
    blob = by_middleware.seal("the reasoning")
    assert ReasoningSealer(_config.seal_key_for(list(reversed(accounts)), {})).unseal(blob) == "the reasoning"
    assert _config.seal_key_for(accounts, {"MIMO_ASGI_SEAL_KEY": "set"}) == "set"


@pytest.mark.parametrize("argv,workers", [
    (["python", "-m", "uvicorn", "examples.gateway:app", "--workers", "4"], 4),
    ([".venv/bin/uvicorn", "app:app", "--workers=3", "--port", "8000"], 3),
    (["/usr/bin/python3", "/usr/bin/gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "app:app"], 2),
    (["gunicorn", "-w5", "app:app"], 5),
    (["hypercorn", "--workers", "2", "app:app"], 2),
    (["python", "-m", "uvicorn", "app:app", "--reload"], 1),
    (["bash", "run.sh", "--workers", "9"], 1),  # not a server this knows
    (["python", "-m", "pytest"], 1),
])
def test_worker_count_from_the_servers_command_line(monkeypatch, argv, workers):
    monkeypatch.setattr(_config, "_parent_argv", lambda: argv)
    assert _config.worker_count({}) == workers


def test_worker_count_from_web_concurrency_for_a_gunicorn_worker(monkeypatch):
    monkeypatch.setattr(_config, "_parent_argv", lambda: ["gunicorn", "app:app"])
    assert _config.worker_count({"WEB_CONCURRENCY": "3"}) == 3
    monkeypatch.setattr(_config, "_parent_argv", lambda: ["python", "-m", "pytest"])
    assert _config.worker_count({"WEB_CONCURRENCY": "3"}) == 1  # not started by a server: one process


def test_one_warning_when_several_workers_and_no_redis(monkeypatch, caplog):
    monkeypatch.setattr(_config, "_parent_argv", lambda: ["uvicorn", "app:app", "--workers", "2"])
    with caplog.at_level(logging.WARNING):
        _config.setup({"MIMO_API_KEY": KEYS[0]})
        _config.setup({"MIMO_API_KEY": KEYS[0], "MIMO_ASGI_REDIS_URL": "redis://127.0.0.1:1/0"})
    said = [r.getMessage() for r in caplog.records if "per process" in r.getMessage()]
    assert len(said) == 1 and "one of 2 workers" in said[0] and "MIMO_ASGI_REDIS_URL" in said[0]
