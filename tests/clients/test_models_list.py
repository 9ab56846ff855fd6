"""GET /v1/models: our MiMo-routed names alone, or merged with the host's list."""

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from support import TEST_KEY

from mimo_asgi import Account, MimoMiddleware
from mimo_asgi.testing import serve_in_thread


def account(url, **kw):
    return Account("a", TEST_KEY, base_url=url, upstream="mimo",
                   models={"gpt-5*": "mimo-v2.5-pro", "o3": "mimo-v2-pro", "GPT-4.1": "mimo-v2.5"}, **kw)


def ids(response):
    assert response.status_code == 200 and response.json()["object"] == "list"
    return [m["id"] for m in response.json()["data"]]


def test_alone_when_the_host_has_no_models_route(gateway, fake):
    url, _ = gateway
    names = ids(httpx.get(url + "/v1/models"))
    # the exact alias, its targets, and what MiMo lists; wildcard rules are not names
    assert "gpt-5*" not in names and "mimo-v2.5-pro" in names
    assert set(fake.models) <= set(names)
    assert len(names) == len(set(names))
    assert ids(httpx.get(url + "/models")) == names


def test_merged_with_the_host_list_without_duplicates(fake_url, fake):
    async def host_models(request):
        return JSONResponse({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "openai"},
                                                        {"id": "o3", "object": "model", "created": 1, "owned_by": "openai"}]})

    host = Starlette(routes=[Route("/v1/models", host_models)])
    with serve_in_thread(MimoMiddleware(host, accounts=[account(fake_url)], api_key=None, seal_key="k")) as url:
        names = ids(httpx.get(url + "/v1/models"))
    assert names[:2] == ["gpt-4o", "o3"] and names.count("o3") == 1
    assert "GPT-4.1" in names and "mimo-v2-pro" in names


def test_falls_back_to_configured_targets_when_mimo_cannot_list(serve_gateway, fake, fake_url):
    dead = "http://127.0.0.1:9/v1"
    url, _ = serve_gateway(accounts=[account(dead)], api_key=None, seal_key="k")
    names = ids(httpx.get(url + "/v1/models"))
    assert names == ["mimo-v2.5-pro", "o3", "mimo-v2-pro", "GPT-4.1", "mimo-v2.5"]


def test_host_errors_other_than_404_pass_through(fake_url):
    host = Starlette(routes=[Route("/v1/models", lambda r: JSONResponse({"detail": "nope"}, status_code=401))])
    with serve_in_thread(MimoMiddleware(host, accounts=[account(fake_url)], api_key=None, seal_key="k")) as url:
        response = httpx.get(url + "/v1/models")
    assert response.status_code == 401 and response.json() == {"detail": "nope"}
