"""examples/custom_resolver.py: the caller's gateway key picks the MiMo account, a semaphore per
account bounds concurrency and always refills, and the gateway key never goes upstream."""

import anyio
import httpx
import openai
import pytest
from example_clients import CHAT, RESPONSES, sdk, sdk_mimo_round
from support import ALICE_KEY, BOB_KEY, GW_ALICE, GW_BOB, custom_resolver_env, wait_for

from examples import custom_resolver
from mimo_asgi import Account, OpenAIError, RouteRequest
from mimo_asgi.testing import Answer, key_fingerprint, serve_in_thread

ACCOUNT_KEYS = {"alice": ALICE_KEY, "bob": BOB_KEY}


@pytest.fixture
def env(tmp_path, fake_url):
    return custom_resolver_env(tmp_path / "accounts.toml", fake_url)


@pytest.fixture
def served(env):
    """(url, the CallerAccounts resolver) of the example served on 127.0.0.1."""
    app = custom_resolver.build(env)
    with serve_in_thread(app) as url:
        yield url, app.resolver


def as_caller(key):
    return {"authorization": f"Bearer {key}"}


def full(resolver):
    return wait_for(lambda: resolver.free("alice") == 2 and resolver.free("bob") == 2)


def test_sdk_against_the_custom_resolver_example(served, fake):
    url, resolver = served
    sdk_mimo_round(sdk(url, api_key=GW_ALICE))
    assert [r.key_fingerprint for r in fake.requests] == [key_fingerprint(ALICE_KEY)] * 2

    host = sdk(url, api_key=GW_ALICE).chat.completions.create(model="claude-3", messages=CHAT["messages"])
    assert host.choices[0].message.content == "answered by the host app for 'claude-3'"
    with pytest.raises(openai.AuthenticationError):  # unknown callers reach the host, which refuses them
        sdk(url, api_key="gw-stranger").chat.completions.create(**CHAT)
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    assert len(fake.requests) == 2 and full(resolver)


def test_each_caller_gets_its_own_account_and_the_gateway_key_stays_home(served, fake):
    url, resolver = served
    calls = [(GW_ALICE, "alice"), (GW_BOB, "bob"), (GW_BOB, "bob"), (GW_ALICE, "alice")]
    for i, (gateway_key, _) in enumerate(calls):
        path, body = ("/v1/responses", RESPONSES) if i % 2 else ("/v1/chat/completions", CHAT)
        response = httpx.post(url + path, json={**body, "stream": i >= 2}, headers=as_caller(gateway_key))
        assert response.status_code == 200
    assert len(fake.requests) == len(calls)
    secrets = [GW_ALICE, GW_BOB, key_fingerprint(GW_ALICE), key_fingerprint(GW_BOB), ALICE_KEY, BOB_KEY]
    for recorded, (_, account) in zip(fake.requests, calls):
        assert recorded.key_fingerprint == key_fingerprint(ACCOUNT_KEYS[account])
        assert recorded.headers["authorization"] == f"Bearer {key_fingerprint(ACCOUNT_KEYS[account])}"
        seen = " ".join(recorded.headers.values()) + recorded.raw.decode()
        assert not [s for s in secrets if s in seen]
    assert full(resolver)


def test_unknown_callers_and_unmapped_models_pass_through(served, fake):
    url, resolver = served
    stranger = httpx.post(url + "/v1/chat/completions", json=CHAT, headers=as_caller("gw-stranger"))
    anonymous = httpx.post(url + "/v1/chat/completions", json=CHAT)
    assert stranger.status_code == anonymous.status_code == 401
    assert stranger.json()["error"]["code"] == "invalid_api_key"
    other = httpx.post(url + "/v1/chat/completions", json={**CHAT, "model": "claude-3"}, headers=as_caller(GW_BOB))
    assert other.json()["choices"][0]["message"]["content"] == "answered by the host app for 'claude-3'"
    assert fake.requests == [] and full(resolver)


def test_slots_refill_after_success_error_and_disconnect(served, fake):
    url, resolver = served
    fake.queue(Answer(text="fine"))
    assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=as_caller(GW_ALICE)).status_code == 200
    assert full(resolver)

    fake.queue(Answer.error_status(500))
    assert httpx.post(url + "/v1/responses", json=RESPONSES, headers=as_caller(GW_ALICE)).status_code == 502
    assert full(resolver)

    fake.queue(Answer(text="a slow answer " * 5, stall_after=(3, 30)))
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", url + "/v1/responses", json={**RESPONSES, "stream": True},
                         headers=as_caller(GW_ALICE)) as response:
            assert response.status_code == 200
            # Keep the iterator: dropping it closes the connection, which is the disconnect below.
            chunks = response.iter_bytes()
            next(chunks)
            assert resolver.free("alice") == 1 and resolver.free("bob") == 2  # held while streaming
    assert full(resolver)

    fake.queue(Answer(silence_before=30))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json=CHAT, headers=as_caller(GW_BOB), timeout=0.5)
    assert full(resolver)


@pytest.mark.anyio
async def test_a_full_account_waits_then_answers_503():
    account = Account("solo", ALICE_KEY, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"}, max_concurrency=1)
    resolver = custom_resolver.CallerAccounts({GW_ALICE: account}, wait=0.05)

    def request(key, model="gpt-5.5"):
        return RouteRequest("chat", model, {}, as_caller(key), {})

    assert await resolver(request("gw-stranger")) is None and await resolver(request(GW_ALICE, "claude-3")) is None
    failover = RouteRequest("chat", "gpt-5.5", {}, as_caller(GW_ALICE), {}, exclude=frozenset({"solo"}))
    assert await resolver(failover) is None and resolver.free("solo") == 1
    held = await resolver(request(GW_ALICE))
    assert held.account is account and resolver.free("solo") == 0
    with pytest.raises(OpenAIError) as busy:
        await resolver(request(GW_ALICE))
    assert busy.value.status == 503 and busy.value.headers["retry-after"] == "1"

    resolver.wait = 10.0
    async with anyio.create_task_group() as tg:  # a waiter gets the slot as soon as it is released
        got = []
        tg.start_soon(lambda: _append(got, resolver(request(GW_ALICE))))
        await anyio.sleep(0.01)
        held.release()
    assert got[0].account is account and resolver.free("solo") == 0
    got[0].release()
    assert resolver.free("solo") == 1


async def _append(into, awaitable):
    into.append(await awaitable)


def test_gateway_keys_config():
    accounts = [Account("alice", ALICE_KEY), Account("bob", BOB_KEY)]
    assert custom_resolver.caller_store("", accounts) == {"gw-demo": accounts[0]}
    assert custom_resolver.caller_store(f"{GW_BOB}=bob", accounts) == {GW_BOB: accounts[1]}
    with pytest.raises(ValueError) as bad:
        custom_resolver.caller_store(f"{GW_ALICE}=carol", accounts)
    assert "carol" in str(bad.value) and GW_ALICE not in str(bad.value)


def test_an_unknown_caller_is_refused_on_the_responses_route_too(served, fake):
    """Not a 404 (which clients such as Codex retry): the host refuses a caller it does not know."""
    url, _ = served
    with pytest.raises(openai.AuthenticationError):
        sdk(url, api_key="gw-stranger").responses.create(**RESPONSES)
    with pytest.raises(openai.NotFoundError):  # a known caller asking for a model nobody serves here
        sdk(url, api_key=GW_ALICE).responses.create(**{**RESPONSES, "model": "claude-3"})
    assert not fake.requests
