"""What every example must do for a client: the openai SDK and raw HTTP against a served example."""

from __future__ import annotations

import json

import httpx
import openai
from support import TEST_KEY

from mimo_asgi._sse import SSEDecoder
from mimo_asgi.testing import Answer

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "gpt-5.5", "input": "hi"}


def mimo_env(fake_url: str, **extra: str) -> dict[str, str]:
    """An environment pointing an example at the fake MiMo: gpt-5* goes to mimo-v2.5-pro."""
    return {"MIMO_API_KEY": TEST_KEY, "MIMO_BASE_URL": fake_url, "MIMO_MODEL_MAP": "gpt-5*=mimo-v2.5-pro",
            "MIMO_ASGI_SEAL_KEY": "example-seal-key", **extra}


def sdk(url: str, api_key: str = "client-own-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=20)


def sdk_mimo_round(client: openai.OpenAI, expected_text: str = "Hello from fake MiMo.") -> None:
    """One Responses stream and one chat completion for gpt-5.5, each answered with `expected_text`."""
    with client.responses.stream(model="gpt-5.5", input="Say hello") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text == expected_text and final.model == "gpt-5.5"

    completion = client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "Say hello"}])
    assert completion.choices[0].message.content == expected_text and completion.model == "gpt-5.5"


def short_circuits(url: str, fake, headers: dict[str, str] | None = None) -> None:
    """Both routes, stream and not, answered from `fake` (which must record each one)."""
    for path, body in (("/v1/responses", RESPONSES), ("/v1/chat/completions", CHAT)):
        for stream in (False, True):
            before = len(fake.requests)
            fake.queue(Answer(text=f"{path} {stream}"))
            response = httpx.post(url + path, json={**body, "stream": stream}, headers=headers, timeout=20)
            assert response.status_code == 200, response.text
            assert len(fake.requests) == before + 1 and fake.requests[-1].body["model"] == "mimo-v2.5-pro"
            assert _text(path, stream, response) == f"{path} {stream}"


def _text(path: str, stream: bool, response: httpx.Response) -> str:
    if not stream:
        body = response.json()
        if path == "/v1/responses":
            return body["output"][-1]["content"][0]["text"]
        return body["choices"][0]["message"]["content"]
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e.data for e in SSEDecoder().feed(response.content)]
    if path == "/v1/responses":
        return "".join(json.loads(d)["delta"] for d in events if json.loads(d)["type"] == "response.output_text.delta")
    assert events[-1] == "[DONE]"
    return "".join(json.loads(d)["choices"][0]["delta"].get("content") or ""
                   for d in events[:-1] if json.loads(d)["choices"])
