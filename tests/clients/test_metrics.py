"""Prometheus metrics after a few requests: counter values and bounded labels."""

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support import TEST_KEY, wait_for

from mimo_asgi import Account, AccountPool
from mimo_asgi.metrics import PrometheusMetrics
from mimo_asgi.testing import Answer, Usage

KEY_B = "sk-test-bbbbbbbbbbbbbbbb"


def samples(metrics):
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(s, name, **labels):
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_after_a_few_requests(serve_gateway, fake, fake_url):
    models = {"gpt-5*": "mimo-v2.5-pro"}
    pool = AccountPool([Account("a", TEST_KEY, base_url=fake_url, upstream="mimo", models=models),
                        Account("b", KEY_B, base_url=fake_url, upstream="mimo", models=models)])
    metrics = PrometheusMetrics()
    url, _ = serve_gateway(resolver=pool, api_key=None, seal_key="k", metrics=metrics)
    metrics.track_pool(pool)
    usage = Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=40, reasoning_tokens=5)
    fake.queue(Answer(text="one", usage=usage), Answer(status=429), Answer(text="two", usage=usage),
               Answer(text="three", usage=usage))
    body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 200  # a
    assert httpx.post(url + "/v1/chat/completions", json={**body, "stream": True}).status_code == 200  # b 429 -> a
    assert httpx.post(url + "/v1/responses", json={"model": "gpt-5.5-made-up-name", "input": "x"}).status_code == 200
    # a request is recorded just after its last byte went out
    assert wait_for(lambda: sum(v for (n, _), v in samples(metrics).items() if n == "mimo_asgi_requests_total") == 3)
    s = samples(metrics)
    # a Chat answer's outcome is its finish reason, stream or not
    assert value(s, "mimo_asgi_requests_total", route="chat", account="a", model="mimo-v2.5-pro", outcome="stop") == 2
    assert sum(value(s, "mimo_asgi_requests_total", route="responses", account=name, model="mimo-v2.5-pro",
                     outcome="completed") for name in "ab") == 1

    def tokens(kind):
        return sum(value(s, "mimo_asgi_tokens_total", account=name, model="mimo-v2.5-pro", kind=kind) for name in "ab")

    assert (tokens("input"), tokens("cached"), tokens("output"), tokens("reasoning")) == (300, 120, 60, 15)
    assert value(s, "mimo_asgi_failovers_total", reason="rate_limited") == 1
    assert value(s, "mimo_asgi_cooldowns_total", account="b", reason="rate_limited") == 1
    assert value(s, "mimo_asgi_held_leases") == 0 and value(s, "mimo_asgi_in_flight_requests") == 0
    assert value(s, "mimo_asgi_request_duration_seconds_count", route="chat", account="a") == 2
    # the client's own model names never become label values
    assert not any("gpt-5" in str(labels) for _, labels in s)


def test_env_route_model_names_are_bounded(serve_gateway, fake, fake_url):
    metrics = PrometheusMetrics()
    url, _ = serve_gateway(api_key=TEST_KEY, base_url=fake_url, seal_key="k", metrics=metrics)
    for name in ("mimo-invented-1", "mimo-invented-2"):
        httpx.post(url + "/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": "x"}]})
    assert wait_for(lambda: sum(v for (n, _), v in samples(metrics).items() if n == "mimo_asgi_requests_total") == 2)
    s = samples(metrics)
    assert not any("invented" in str(labels) for _, labels in s)
    assert value(s, "mimo_asgi_requests_total", route="chat", account="env", model="other",
                 outcome="invalid_request_error") == 2
