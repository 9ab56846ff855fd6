"""Auto web search through the middleware, for a Token Plan account on a Token Plan fake MiMo."""

import json

import httpx
import pytest
from support import TEST_TP_KEY, host_app
from test_search_providers import FakeSearchApis

from mimo_asgi import Account, MimoMiddleware
from mimo_asgi.search import SearxngSearch, WebSearch
from mimo_asgi.testing import Answer, FakeMimo, serve_in_thread


@pytest.fixture(scope="module")
def servers():
    apis, mimo = FakeSearchApis(), FakeMimo(token_plan=True)
    with serve_in_thread(apis.app) as search_url, serve_in_thread(mimo) as mimo_url:
        yield apis, search_url, mimo, mimo_url


def gateway(servers, **kw):
    apis, search_url, mimo, mimo_url = servers
    apis.reset()
    mimo.reset()
    account = Account("tp", TEST_TP_KEY, base_url=mimo_url + "/v1", upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    assert account.is_token_plan and not account.allows_native_web_search  # by its tp- key
    search = WebSearch(SearxngSearch(search_url + "/searx"), deadline=2.0)
    return MimoMiddleware(host_app(), accounts=[account], api_key=None, seal_key="k", web_search=search, **kw)


@pytest.mark.parametrize("path,body", [
    ("/v1/responses", {"model": "gpt-5.5", "instructions": "Be brief.", "tools": [{"type": "web_search"}],
                       "input": [{"role": "user", "content": [{"type": "input_text", "text": "latest tide tables"}]}]}),
    ("/v1/chat/completions", {"model": "gpt-5.5", "tools": [{"type": "web_search"}],
                              "messages": [{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Second."},
                                           {"role": "user", "content": [{"type": "text", "text": "latest tide tables"}]}]}),
])
def test_results_go_into_the_real_system_message_and_the_tool_is_gone(servers, path, body):
    apis, _, mimo, _ = servers
    with serve_in_thread(gateway(servers)) as url:
        mimo.queue(Answer(text="See https://site1.example.org/page/1 for tides."))
        response = httpx.post(url + path, json=body, timeout=10)
    assert response.status_code == 200, response.text
    sent = mimo.requests[-1]
    assert sent.status == 200  # the fake would 400 a web_search tool: webSearchEnabled is false
    assert "tools" not in sent.body
    systems = [m for m in sent.body["messages"] if m["role"] == "system"]
    assert "Be brief." in json.dumps(systems[0]) and "https://site1.example.org/page/1" in json.dumps(systems[0])
    if len(systems) > 1:
        assert systems[1]["content"] == "Second."  # only the first system message gets the results
    assert apis.requests[-1]["params"]["q"] == "latest tide tables"


def test_no_system_message_and_a_failed_search(servers):
    apis, _, mimo, _ = servers
    with serve_in_thread(gateway(servers)) as url:
        apis.status = 500
        mimo.queue(Answer(text="fine without search"))
        response = httpx.post(url + "/v1/chat/completions", json={
            "model": "gpt-5.5", "tools": [{"type": "web_search"}], "messages": [{"role": "user", "content": "news today"}]})
    assert response.status_code == 200
    first = mimo.requests[-1].body["messages"][0]
    assert first["role"] == "system" and "unavailable" in json.dumps(first).lower()


def test_without_a_search_backend_the_tool_is_still_never_sent(servers):
    apis, _, mimo, mimo_url = servers
    mimo.reset()
    account = Account("tp", TEST_TP_KEY, base_url=mimo_url + "/v1", upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    mw = MimoMiddleware(host_app(), accounts=[account], api_key=None, seal_key="k", web_search=None)
    with serve_in_thread(mw) as url:
        mimo.queue(Answer(text="no search"))
        response = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "x",
                                                           "tools": [{"type": "web_search_preview"}]})
    assert response.status_code == 200 and "tools" not in mimo.requests[-1].body


@pytest.mark.parametrize("stream", [False, True])
def test_responses_client_sees_the_search_and_the_citation(servers, stream):
    import openai
    from unit.invariants import check_responses_stream

    from mimo_asgi._sse import SSEDecoder

    apis, _, mimo, _ = servers
    body = {"model": "gpt-5.5", "input": "tide tables for Brest", "tools": [{"type": "web_search"}], "stream": stream}
    with serve_in_thread(gateway(servers)) as url:
        mimo.queue(Answer(text="High tide is listed at https://site1.example.org/page/1 today."))
        if stream:
            raw = httpx.post(url + "/v1/responses", json=body, timeout=10).content
            final = check_responses_stream([json.loads(e.data) for e in SSEDecoder().feed(raw)])
        else:
            final = httpx.post(url + "/v1/responses", json=body, timeout=10).json()
        mimo.queue(Answer(text="See https://site2.example.org/page/2"))
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0).responses.create(
            model="gpt-5.5", input="tides", tools=[{"type": "web_search"}])
    search, message = final["output"][0], final["output"][-1]
    assert search["type"] == "web_search_call" and search["status"] == "completed"
    assert search["action"]["query"] == "tide tables for Brest"
    assert {"type": "url", "url": "https://site1.example.org/page/1"} in search["action"]["sources"]
    text = message["content"][0]["text"]
    (citation,) = message["content"][0]["annotations"]
    assert citation["type"] == "url_citation" and citation["url"] == "https://site1.example.org/page/1"
    assert text[citation["start_index"]:citation["end_index"]] == citation["url"]
    assert sdk.output[0].type == "web_search_call" and sdk.output_text == "See https://site2.example.org/page/2"
