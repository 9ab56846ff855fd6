"""The pytest plugin, used the way a user would: fixtures and the openai SDK."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

import mimo_asgi
from mimo_asgi.testing import Answer, FakeMimo, ToolCall, key_fingerprint
from mimo_asgi.testing.plugin import Gateway

pytest_plugins = ["pytester"]


def test_openai_client_against_the_fake(fake_mimo: FakeMimo, fake_mimo_url: str) -> None:
    fake_mimo.queue(Answer("Bonjour."))
    client = openai.OpenAI(base_url=fake_mimo_url, api_key=fake_mimo.api_key, max_retries=0)
    completion = client.chat.completions.create(
        model="mimo-v2.5-pro", messages=[{"role": "user", "content": "Say hello in French"}]
    )
    assert completion.choices[0].message.content == "Bonjour."
    assert completion.usage is not None and completion.usage.total_tokens > 0
    (recorded,) = fake_mimo.requests
    assert recorded.body["messages"][0]["content"] == "Say hello in French"
    assert recorded.key_fingerprint == key_fingerprint(fake_mimo.api_key)


def test_openai_streaming_tool_call(fake_mimo: FakeMimo, fake_mimo_url: str) -> None:
    fake_mimo.queue(Answer(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
    client = openai.OpenAI(base_url=fake_mimo_url, api_key=fake_mimo.api_key, max_retries=0)
    stream = client.chat.completions.create(
        model="mimo-v2.5-pro",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        stream=True,
        stream_options={"include_usage": True},
    )
    names, arguments, finish, usage = [], [], None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                names.append(call.function.name) if call.function.name else None
                arguments.append(call.function.arguments or "")
    assert names == ["get_weather"] and "".join(arguments) == '{"city":"Paris"}'
    assert finish == "tool_calls" and usage is not None


def test_openai_errors_from_the_fake(fake_mimo: FakeMimo, fake_mimo_url: str) -> None:
    client = openai.OpenAI(base_url=fake_mimo_url, api_key=fake_mimo.api_key, max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    assert "Not supported model gpt-5" in str(bad.value)
    fake_mimo.queue(Answer.rate_limited())
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="mimo-v2.5-pro", messages=[{"role": "user", "content": "hi"}])
    wrong_host = openai.OpenAI(base_url=fake_mimo_url, api_key="tp-token-plan-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_host.models.list()
    assert [r.status for r in fake_mimo.requests] == [400, 429, 401]


def test_fixtures_are_fresh_per_test(fake_mimo: FakeMimo) -> None:
    assert fake_mimo.requests == [] and not fake_mimo.token_plan


def test_a_user_test_file_runs_with_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import httpx
        from mimo_asgi.testing import Answer

        def test_user(fake_mimo, fake_mimo_url):
            fake_mimo.queue(Answer("scripted"))
            response = httpx.post(
                fake_mimo_url + "/chat/completions",
                headers={"Authorization": "Bearer " + fake_mimo.api_key},
                json={"model": "mimo-v2.5", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert response.json()["choices"][0]["message"]["content"] == "scripted"
            assert fake_mimo_url.endswith("/v1")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


class StubMiddleware:
    """Stands in for MimoMiddleware: answers with its options and proxies /v1/models upstream."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.app = app
        self.options = options

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/models":
            return await self.app(scope, receive, send)
        async with httpx.AsyncClient() as client:
            upstream = await client.get(self.options["base_url"] + "/models", headers={"api-key": self.options["api_key"]})
        await send({"type": "http.response.start", "status": upstream.status_code, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": upstream.content})


def test_mimo_gateway_wires_a_host_app_to_the_fake(
    mimo_gateway: Any, fake_mimo: FakeMimo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mimo_asgi, "MimoMiddleware", StubMiddleware, raising=False)
    gateway: Gateway = mimo_gateway(option="kept")
    assert gateway.fake is fake_mimo and gateway.url.endswith("/v1") and gateway.upstream_url.endswith("/v1")
    assert gateway.app.options == {"option": "kept", "base_url": gateway.upstream_url, "api_key": fake_mimo.api_key}
    assert httpx.get(gateway.url + "/models").json()["object"] == "list"
    assert httpx.get(gateway.url + "/anything").status_code == 404  # the default host app
    assert [r.path for r in fake_mimo.requests] == ["/v1/models"]


def test_mimo_gateway_with_its_own_fake_and_accounts(mimo_gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mimo_asgi, "MimoMiddleware", StubMiddleware, raising=False)
    token_plan = FakeMimo(token_plan=True)
    gateway = mimo_gateway(fake=token_plan, accounts=["given"])
    assert gateway.fake is token_plan
    assert "api_key" not in gateway.app.options and gateway.app.options["accounts"] == ["given"]
    assert gateway.app.options["base_url"] == gateway.upstream_url


def test_mimo_gateway_serves_the_real_middleware(mimo_gateway: Any, fake_mimo: FakeMimo) -> None:
    gateway = mimo_gateway()
    fake_mimo.queue(Answer("through the gateway"))
    client = openai.OpenAI(base_url=gateway.url, api_key="client-side-key", max_retries=0)
    completion = client.chat.completions.create(model="mimo-v2.5-pro", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "through the gateway"
    (upstream,) = fake_mimo.requests
    assert upstream.status == 200 and upstream.key_fingerprint == key_fingerprint(fake_mimo.api_key)
