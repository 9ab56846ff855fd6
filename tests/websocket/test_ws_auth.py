"""Auth and routing per frame: the resolver sees, for every frame, the handshake's headers and
scope with that frame's body, so a resolver that authenticates callers gates WebSocket frames
as it gates HTTP requests; a lease is held per response, not per connection."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
import pytest
from support import ALICE_KEY, BOB_KEY, GW_ALICE, GW_BOB, TEST_KEY, custom_resolver_env, wait_for
from websocket.wsclient import BETA, completed, error_of, output_text

from examples import custom_resolver
from mimo_asgi import Account, OpenAIError, RouteRequest
from mimo_asgi.testing import Answer, key_fingerprint, serve_in_thread

MODELS = {"gpt-5*": "mimo-v2.5-pro"}
GOOD, BAD = "gw-good-secret-0001", "gw-bad-secret-0002"


def _bearer(headers: Mapping[str, str]) -> str:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


class GatewayKeys:
    """A resolver that authenticates callers by their gateway key and refuses unknown ones."""

    def __init__(self, callers: Mapping[str, Account]) -> None:
        self.callers = dict(callers)
        self.seen: list[RouteRequest] = []

    def __call__(self, request: RouteRequest) -> Account:
        self.seen.append(request)
        account = self.callers.get(_bearer(request.headers))
        if account is None:
            raise OpenAIError(401, "Unknown gateway key.", code="invalid_api_key")
        return account


@pytest.fixture
def keyed(serve_gateway, fake_url):
    resolver = GatewayKeys({GOOD: Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)})
    url, _ = serve_gateway(resolver=resolver, api_key=None, seal_key="k")
    return url, resolver


def test_a_good_gateway_key_is_served_and_never_sent_upstream(keyed, fake, open_ws):
    url, resolver = keyed
    ws = open_ws(url, headers={"Authorization": f"Bearer {GOOD}", **BETA})
    fake.queue(Answer(text="welcome", reasoning=""), Answer(text="again", reasoning=""))
    first = completed(ws.create(model="gpt-5.5", input="first frame", store=False))
    assert output_text(first) == "welcome"
    completed(ws.create(model="gpt-5.5", input="second frame", store=False, previous_response_id=first["id"]))
    assert [r.key_fingerprint for r in fake.requests] == [key_fingerprint(TEST_KEY)] * 2
    assert GOOD not in json.dumps([r.headers for r in fake.requests])
    # the resolver saw every frame: the handshake's headers and scope, that frame's body
    assert [r.route for r in resolver.seen] == ["responses", "responses"]
    assert [_bearer(r.headers) for r in resolver.seen] == [GOOD, GOOD]
    assert all(r.scope["type"] == "websocket" and r.scope["path"] == "/v1/responses" for r in resolver.seen)
    assert resolver.seen[0].body["input"] == "first frame"
    assert resolver.seen[1].body["input"] == "second frame"  # that frame's body, as the client sent it
    assert resolver.seen[1].body["previous_response_id"] == first["id"]


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {BAD}"}, {}], ids=["unknown-key", "no-key"])
def test_a_bad_gateway_key_gets_the_resolvers_error_on_every_frame(keyed, fake, open_ws, headers):
    url, resolver = keyed
    ws = open_ws(url, headers=headers)
    for frame in ({"model": "gpt-5.5", "input": "hi"}, {"model": "gpt-5.5", "input": "hi", "generate": False}):
        error = error_of(ws.create(**frame), 401, "invalid_api_key")
        assert error["error"]["message"] == "Unknown gateway key."
    assert fake.requests == []
    assert len(resolver.seen) == 2  # the warm-up is gated too
    # the same gateway, another socket with a good key
    good = open_ws(url, headers={"Authorization": f"Bearer {GOOD}"})
    completed(good.create(model="gpt-5.5", input="hi"))


@pytest.fixture
def example(tmp_path, fake_url):
    """examples/custom_resolver.py served with two accounts on the fake MiMo."""
    env = custom_resolver_env(tmp_path / "accounts.toml", fake_url)
    app = custom_resolver.build(env)
    with serve_in_thread(app) as url:
        yield url, app.resolver


def test_the_custom_resolver_example_gates_frames_and_leases_per_response(example, fake, open_ws):
    url, resolver = example
    alice = open_ws(url, headers={"Authorization": f"Bearer {GW_ALICE}"})
    bob = open_ws(url, headers={"Authorization": f"Bearer {GW_BOB}"})
    fake.respond_with(lambda body: Answer(text="ok", reasoning=""))
    for _ in range(3):  # more responses than alice's account has slots: each gives its lease back
        completed(alice.create(model="gpt-5.5", input="hi"))
    completed(bob.create(model="gpt-5.5", input="hi"))
    assert [r.key_fingerprint for r in fake.requests] == [key_fingerprint(ALICE_KEY)] * 3 + [key_fingerprint(BOB_KEY)]
    assert GW_ALICE not in json.dumps([r.headers for r in fake.requests])
    # both sockets stay open, and no slot is held between responses
    assert wait_for(lambda: resolver.free("alice") == 2 and resolver.free("bob") == 2, 5)
    # a caller the resolver does not know is the host's to answer, over HTTP and over the socket alike
    stranger = {"Authorization": "Bearer gw-nobody"}
    over_http = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "hi"}, headers=stranger,
                           timeout=10)
    frame = error_of(open_ws(url, headers=stranger).create(model="gpt-5.5", input="hi"), over_http.status_code)
    assert over_http.status_code >= 400 and frame["error"]["message"]
    assert len(fake.requests) == 4
