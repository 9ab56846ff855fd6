"""examples/gateway.py under uvicorn with two workers and a real redis-server (MIMO_ASGI_REDIS_URL):
what one worker stores, leases or learns, the other honours; Redis going away is a clear 503.

Which worker answered a request is read from uvicorn's access log, whose lines carry the
worker's pid (a log config given to uvicorn) and the request's `?probe=<name>` query: the
middleware routes on the path alone, so the probe changes nothing else. Every request opens a
new connection, so the kernel hands each one to either worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis_server import RedisServer, free_port
from redis_server import own_redis, redis_binary  # noqa: F401  (fixtures)
from support import TEST_KEY, wait_for

from mimo_asgi.testing import Answer

REPO = Path(__file__).resolve().parents[2]
CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
LOG_CONFIG = {
    "version": 1, "disable_existing_loggers": False,
    "formatters": {"pid": {"format": "%(process)d %(name)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "pid", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {"httpx": {"level": "WARNING"}},
}
PER_PROCESS = "stored responses and account limits are per process"


@dataclass
class Workers:
    url: str
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def served_by(self, probe: str) -> int:
        """The pid of the worker whose access log line carries `?probe=<probe>`."""
        pattern = re.compile(rf'^(\d+) uvicorn\.access .*\?probe={re.escape(probe)} HTTP')
        for _ in range(100):  # the line is written as the response starts; give it a moment
            found = [int(m.group(1)) for line in self.lines() if (m := pattern.match(line))]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no access log line for probe {probe!r}")

    def post(self, path: str, body: dict, probe: str) -> httpx.Response:
        return httpx.post(f"{self.url}{path}?probe={probe}", json=body, timeout=20)  # a new connection each time


def env_for(fake_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    # no MIMO_ASGI_SEAL_KEY: every worker derives the same seal key from the account keys
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIMO_", "WEB_CONCURRENCY"))}
    env |= {"MIMO_API_KEY": TEST_KEY, "MIMO_BASE_URL": fake_url, "MIMO_MODEL_MAP": "gpt-5*=mimo-v2.5-pro", **extra}
    if redis_url:
        env["MIMO_ASGI_REDIS_URL"] = redis_url
    return env


@contextlib.contextmanager
def two_workers(tmp_path: Path, env: dict[str, str]) -> Iterator[Workers]:
    """`uvicorn examples.gateway:app --workers 2` on 127.0.0.1, until both workers have started."""
    port = free_port()
    config = tmp_path / "log-config.json"
    config.write_text(json.dumps(LOG_CONFIG))
    log = tmp_path / "gateway.log"
    cmd = [sys.executable, "-m", "uvicorn", "examples.gateway:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "2", "--log-config", str(config)]
    with log.open("ab") as sink:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                start_new_session=True)
    workers = Workers(f"http://127.0.0.1:{port}", log)
    try:
        started = wait_for(lambda: proc.poll() is not None or
                           sum("Application startup complete" in line for line in workers.lines()) >= 2, 60)
        assert started and proc.poll() is None, "uvicorn did not start two workers:\n" + "\n".join(workers.lines())
        yield workers
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def test_stored_responses_continue_on_either_worker(own_redis: RedisServer, fake, fake_url, tmp_path):
    with two_workers(tmp_path, env_for(fake_url, own_redis.url)) as gw:
        previous, served = None, []
        for turn in range(80):  # the kernel picks the worker of each new connection: go on until both have
            body = {"model": "gpt-5.5", "input": f"turn {turn}", "previous_response_id": previous}
            response = gw.post("/v1/responses", body, probe=f"turn{turn}")
            assert response.status_code == 200, response.text
            previous = response.json()["id"]
            messages = fake.requests[-1].body["messages"]
            assert [m["role"] for m in messages] == ["user", "assistant"] * turn + ["user"]
            # the reasoning sealed by whichever worker served a turn opens on this one: one seal key
            assert all(m.get("reasoning_content") == "Thinking briefly." for m in messages if m["role"] == "assistant")
            served.append(gw.served_by(f"turn{turn}"))
            switches = sum(a != b for a, b in zip(served, served[1:]))  # continued on the other worker, and found
            if turn >= 7 and switches >= 2:
                break
        assert len(set(served)) == 2 and switches >= 2, f"the chain stayed on one worker: {served}"
        assert not any(PER_PROCESS in line for line in gw.lines())


def test_max_concurrency_holds_across_workers(own_redis: RedisServer, fake, fake_url, tmp_path):
    with two_workers(tmp_path, env_for(fake_url, own_redis.url, MIMO_MAX_CONCURRENCY="1")) as gw:
        fake.queue(Answer(text="holding the only slot", stall_after=(2, 8)))
        with httpx.Client(timeout=20) as http, \
                http.stream("POST", gw.url + "/v1/chat/completions?probe=held", json={**CHAT, "stream": True}) as held:
            chunks = held.iter_bytes()  # keep the iterator: dropping it would close the stream
            next(chunks)
            holder, others = gw.served_by("held"), 0
            for i in range(60):  # the kernel picks the worker of each new connection: ask until both have
                refused = gw.post("/v1/chat/completions", CHAT, probe=f"busy{i}")
                assert refused.status_code == 503 and refused.json()["error"]["code"] == "accounts_busy"
                others += gw.served_by(f"busy{i}") != holder
                if others >= 3 and i >= 9:
                    break
            assert others, "the other worker never answered"
            assert len(fake.requests) == 1
        assert wait_for(lambda: gw.post("/v1/chat/completions", CHAT, probe="after").status_code == 200, 10)


def test_a_rate_limit_seen_by_one_worker_is_honoured_by_the_other(own_redis: RedisServer, fake, fake_url, tmp_path):
    with two_workers(tmp_path, env_for(fake_url, own_redis.url)) as gw:
        fake.queue(Answer.rate_limited(headers={"retry-after": "30"}))
        limited = gw.post("/v1/chat/completions", CHAT, probe="limited")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "30"
        first, others = gw.served_by("limited"), 0
        for i in range(60):  # the kernel picks the worker of each new connection: ask until both have
            told = gw.post("/v1/responses", {"model": "gpt-5.5", "input": "hi"}, probe=f"told{i}")
            assert told.status_code == 429 and told.json()["error"]["code"] == "rate_limit_exceeded"
            assert 0 < int(told.headers["retry-after"]) <= 30
            others += gw.served_by(f"told{i}") != first
            if others >= 3 and i >= 9:
                break
        assert others, "the other worker never answered"
        assert len(fake.requests) == 1  # MiMo was not asked again, by either worker


def test_redis_going_away_is_a_503_store_unavailable_until_it_returns(own_redis: RedisServer, fake, fake_url,
                                                                        tmp_path):
    with two_workers(tmp_path, env_for(fake_url, own_redis.url)) as gw:
        assert gw.post("/v1/responses", {"model": "gpt-5.5", "input": "hi"}, probe="before").status_code == 200
        asked = len(fake.requests)
        own_redis.stop()
        for i in range(6):
            path, body = ("/v1/responses", {"model": "gpt-5.5", "input": "hi"}) if i % 2 else ("/v1/chat/completions",
                                                                                             CHAT)
            down = gw.post(path, body, probe=f"down{i}")
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "store_unavailable" and down.headers["retry-after"] == "1"
        assert len(fake.requests) == asked  # nothing reached MiMo without its lease
        own_redis.start()  # the same port, empty
        back = [gw.post("/v1/responses", {"model": "gpt-5.5", "input": "hi"}, probe=f"back{i}") for i in range(6)]
        assert [r.status_code for r in back] == [200] * 6, [r.text for r in back]


def test_without_redis_each_worker_says_its_state_is_per_process(fake, fake_url, tmp_path):
    with two_workers(tmp_path, env_for(fake_url)) as gw:
        assert gw.post("/v1/chat/completions", CHAT, probe="works").status_code == 200
        said = [line for line in gw.lines() if PER_PROCESS in line]
    assert len(said) == 2 and len({line.split()[0] for line in said}) == 2  # once by each worker
    assert "MIMO_ASGI_REDIS_URL" in said[0] and "WARNING" in said[0]


@pytest.mark.parametrize("name", ["gateway", "starlette_app", "litestar_app", "layered_gateway", "custom_resolver"])
def test_every_example_keeps_its_state_in_the_redis_it_is_given(own_redis: RedisServer, fake, fake_url, name):
    """Each example reads MIMO_ASGI_REDIS_URL: its stored responses and its accounts' affinity are
    in that Redis (served here in one process; the tests above run two workers)."""
    import importlib

    import redis

    from mimo_asgi.testing import serve_in_thread

    module = importlib.import_module(f"examples.{name}")
    env = {"MIMO_API_KEY": TEST_KEY, "MIMO_BASE_URL": fake_url, "MIMO_MODEL_MAP": "gpt-5*=mimo-v2.5-pro",
           "MIMO_ASGI_REDIS_URL": own_redis.url}
    headers = {"authorization": "Bearer gw-demo"}  # custom_resolver's caller key; the others ignore it
    with serve_in_thread(module.build(env)) as url:
        first = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "hi"}, headers=headers, timeout=20)
        assert first.status_code == 200, first.text
        response_id = first.json()["id"]
        client = redis.Redis.from_url(own_redis.url)
        try:
            assert client.exists(f"mimo_asgi:resp:{response_id}")
            assert wait_for(lambda: client.get(f"mimo_asgi:aff:prev:{response_id}") == b"default")
        finally:
            client.close()
        more = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "more",
                                                        "previous_response_id": response_id}, headers=headers, timeout=20)
        assert more.status_code == 200, more.text
