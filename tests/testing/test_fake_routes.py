"""Routes and authentication of the fake: paths with and without /v1, key kinds (A1), 401/404."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from mimo_asgi.testing import DEFAULT_MODELS, TOKEN_PLAN_MODELS, FakeMimo

BODY = {"model": "mimo-v2.5-pro", "messages": [{"role": "user", "content": "hi"}]}
INVALID_KEY = {"error": {"message": "Invalid API Key", "param": "Please provide valid API Key", "code": "401", "type": "invalid_key"}}


def request(fake: FakeMimo, method: str, path: str, headers: dict[str, str], body: object = BODY) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake") as client:
            content = json.dumps(body).encode() if method == "POST" else None
            return await client.request(method, path, content=content, headers=headers)

    return anyio.run(go)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions", "/v1/chat/completions/"])
def test_chat_route_with_and_without_v1(path: str) -> None:
    fake = FakeMimo()
    assert request(fake, "POST", path, {"authorization": f"Bearer {fake.api_key}"}).status_code == 200


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
def test_models_list_in_openai_shape(path: str) -> None:
    fake = FakeMimo()
    response = request(fake, "GET", path, {"api-key": fake.api_key})
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == list(DEFAULT_MODELS)
    assert all(m["object"] == "model" and isinstance(m["created"], int) for m in listing["data"])


def test_token_plan_lists_its_own_models() -> None:
    fake = FakeMimo(token_plan=True)
    listing = request(fake, "GET", "/v1/models", {"api-key": fake.api_key}).json()
    assert [m["id"] for m in listing["data"]] == list(TOKEN_PLAN_MODELS)


def test_models_need_a_key() -> None:
    assert request(FakeMimo(), "GET", "/v1/models", {}).status_code == 401


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/messages", "/", "/v2/chat/completions"])
def test_unknown_paths_are_404_in_mimo_shape(path: str) -> None:
    fake = FakeMimo()
    response = request(fake, "POST", path, {"api-key": fake.api_key})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "404"
    assert set(response.json()["error"]) == {"code", "message", "param", "type"}


def test_wrong_method_on_a_known_path_is_405() -> None:
    fake = FakeMimo()
    assert request(fake, "GET", "/v1/chat/completions", {"api-key": fake.api_key}).status_code == 405


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer "},
        {"authorization": "Basic c2stYWJj"},
        {"authorization": "Bearer tp-token-plan-key"},  # a Token Plan key on the PAYG host
        {"authorization": "Bearer sk-cp-minimax-key"},  # MiniMax's key format, not MiMo's
        {"api-key": "nonsense"},
    ],
)
def test_payg_host_refuses_missing_and_foreign_keys(headers: dict[str, str]) -> None:
    response = request(FakeMimo(), "POST", "/v1/chat/completions", headers)
    assert response.status_code == 401
    assert response.json() == INVALID_KEY


def test_token_plan_host_accepts_only_tp_keys() -> None:
    fake = FakeMimo(token_plan=True)
    assert fake.api_key.startswith("tp-")
    assert request(fake, "POST", "/v1/chat/completions", {"api-key": "tp-any-key"}).status_code == 200
    assert request(fake, "POST", "/v1/chat/completions", {"api-key": "sk-payg-key"}).status_code == 401


def test_both_auth_headers_are_accepted() -> None:
    fake = FakeMimo()
    for headers in ({"authorization": "Bearer sk-one"}, {"authorization": "bearer sk-one"}, {"api-key": "sk-one"}):
        assert request(fake, "POST", "/v1/chat/completions", headers).status_code == 200
    both = {"authorization": "Bearer sk-one", "api-key": "sk-one"}
    assert request(fake, "POST", "/v1/chat/completions", both).status_code == 200


def test_keys_limit_which_keys_authenticate() -> None:
    fake = FakeMimo(keys=["sk-good-1", "sk-good-2"])
    assert fake.api_key in {"sk-good-1", "sk-good-2"}
    assert request(fake, "POST", "/v1/chat/completions", {"api-key": "sk-good-2"}).status_code == 200
    assert request(fake, "POST", "/v1/chat/completions", {"api-key": "sk-other"}).status_code == 401


def test_keys_of_the_wrong_kind_are_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="tp-"):
        FakeMimo(token_plan=True, keys=["sk-payg"])


def test_401_is_indented_json_even_for_streams() -> None:
    response = request(FakeMimo(), "POST", "/v1/chat/completions", {}, {**BODY, "stream": True})
    assert response.headers["content-type"] == "application/json"
    assert response.text.startswith('{\n    "error"')
    assert response.json() == INVALID_KEY


def test_lifespan_is_acknowledged() -> None:
    async def go() -> list[str]:
        sent: list[str] = []
        incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> dict[str, str]:
            return next(incoming)

        async def send(message: dict[str, str]) -> None:
            sent.append(message["type"])

        await FakeMimo()({"type": "lifespan"}, receive, send)
        return sent

    assert anyio.run(go) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
