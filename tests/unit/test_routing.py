import pytest

from mimo_asgi import Account, AccountPool, OpenAIError, RouteRequest
from mimo_asgi._routing import (
    PAYG_BASE_URL,
    TOKEN_PLAN_BASE_URL,
    chat_completions_url,
    compile_model_map,
    is_mimo_account,
    is_token_plan,
    map_model,
    parse_model_map,
    resolve_base_url,
)


@pytest.mark.parametrize(
    ("upstream", "base_url", "key", "expected"),
    [
        ("mimo", None, "sk-anything", True),
        ("MiMo", "https://api.openai.com/v1", "sk-x", True),  # declared type wins
        ("openai", "https://api.xiaomimimo.com/v1", "tp-x", False),
        (None, "https://api.xiaomimimo.com/v1", "sk-x", True),
        (None, "https://token-plan-sgp.xiaomimimo.com/v1", "tp-x", True),
        (None, "https://api.openai.com/v1", "tp-x", False),  # a base URL decides before the key
        (None, "https://evilxiaomimimo.com/v1", "sk-x", False),
        (None, None, "tp-abc", True),
        (None, None, "sk-abc", False),  # sk- is OpenAI's prefix too
        (None, None, "sk-cp-abc", False),  # MiniMax
    ],
)
def test_account_level_routing(upstream, base_url, key, expected):
    assert is_mimo_account(upstream, base_url, key) is expected
    assert Account("a", key, base_url=base_url, upstream=upstream).is_mimo is expected


def test_token_plan_signals():
    assert is_token_plan("tp-x", None)
    assert is_token_plan("sk-x", "https://token-plan-ams.xiaomimimo.com/v1")
    assert not is_token_plan("sk-x", "https://api.xiaomimimo.com/v1")


def test_base_url_inference_and_join():
    assert resolve_base_url("tp-x", None) == TOKEN_PLAN_BASE_URL
    assert resolve_base_url("sk-x", "") == PAYG_BASE_URL
    assert resolve_base_url("tp-x", "https://token-plan-sgp.xiaomimimo.com/v1") == "https://token-plan-sgp.xiaomimimo.com/v1"
    assert chat_completions_url("https://api.xiaomimimo.com/v1") == "https://api.xiaomimimo.com/v1/chat/completions"
    assert chat_completions_url("https://api.xiaomimimo.com/v1/") == "https://api.xiaomimimo.com/v1/chat/completions"
    assert chat_completions_url("https://api.xiaomimimo.com") == "https://api.xiaomimimo.com/v1/chat/completions"
    assert chat_completions_url("http://127.0.0.1:9/v1/chat/completions") == "http://127.0.0.1:9/v1/chat/completions"
    assert Account("a", "tp-k").chat_url == "https://token-plan-cn.xiaomimimo.com/v1/chat/completions"


def test_model_map_most_specific_wins_case_insensitive():
    rules = compile_model_map({"*": "mimo-v2.5", "gpt-5*": "mimo-v2.5-pro", "gpt-5.5-mini": "mimo-v2-flash", "GPT-5.5*": "mimo-v2-pro"})
    assert map_model(rules, "GPT-5.5-MINI") == "mimo-v2-flash"  # exact beats wildcards
    assert map_model(rules, "gpt-5.5") == "mimo-v2-pro"  # more literal characters
    assert map_model(rules, "gpt-5.1-codex") == "mimo-v2.5-pro"
    assert map_model(rules, "o3") == "mimo-v2.5"
    assert map_model(compile_model_map({"o3": "mimo-v2-pro"}), "o3-mini") is None


def test_parse_model_map():
    assert parse_model_map("gpt-5*=mimo-v2.5-pro, o3=mimo-v2-pro") == {"gpt-5*": "mimo-v2.5-pro", "o3": "mimo-v2-pro"}
    assert parse_model_map("") == {}
    with pytest.raises(ValueError):
        parse_model_map("gpt-5")


def test_account_upstream_model():
    account = Account("a", "sk-k", upstream="mimo", models={"gpt-5*": "MiMo-V2.5-Pro"})
    assert account.upstream_model("gpt-5.5") == "mimo-v2.5-pro"
    assert account.upstream_model("MiMo-V2.5") == "mimo-v2.5"  # MiMo ids are lower-case
    assert account.upstream_model("claude-3") is None


def test_secret_never_shown():
    account = Account("a", "sk-verysecretvalue123")
    assert "verysecret" not in repr(account)
    assert "verysecret" not in repr(account.api_key) and "verysecret" not in str(account.api_key)
    assert account.key == "sk-verysecretvalue123"


def _req(model):
    return RouteRequest("responses", model, {"model": model}, {}, {})


def test_pool_round_robin_capacity_and_release():
    a = Account("a", "sk-a", upstream="mimo", max_concurrency=1)
    b = Account("b", "sk-b", upstream="mimo", max_concurrency=1)
    pool = AccountPool([a, b])
    first, second = pool(_req("mimo-v2.5-pro")), pool(_req("mimo-v2.5-pro"))
    assert {first.account.name, second.account.name} == {"a", "b"}
    with pytest.raises(OpenAIError) as info:
        pool(_req("mimo-v2.5-pro"))
    assert info.value.status == 503 and info.value.headers["retry-after"] == "1"
    first.release()
    first.release()  # idempotent: a double release must not free a slot twice
    assert pool.in_flight() == 1
    third = pool(_req("mimo-v2.5-pro"))
    assert third.account is first.account
    second.release(), third.release()
    assert pool.in_flight() == 0


def test_pool_serves_only_mapped_or_mimo_models():
    pool = AccountPool([Account("a", "sk-a", upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"}),
                        Account("o", "sk-o", upstream="openai")])
    assert pool(_req("claude-3")) is None
    lease = pool(_req("gpt-5.5"))
    assert lease.account.name == "a"
    lease.release()
    with pytest.raises(ValueError):
        AccountPool([Account("a", "k"), Account("a", "k2")])


def test_affinity_keeps_a_conversation_on_its_account_until_it_cannot():
    clock = [100.0]
    a = Account("a", "sk-a", upstream="mimo", max_concurrency=4)
    b = Account("b", "sk-b", upstream="mimo", max_concurrency=4)
    pool = AccountPool([a, b], clock=lambda: clock[0], affinity_ttl=60)

    def lease(key=None, headers=None):
        body = {"model": "mimo-v2.5-pro", **({"prompt_cache_key": key} if key else {})}
        held = pool(RouteRequest("responses", "mimo-v2.5-pro", body, headers or {}, {}))
        held.release()
        return held

    first = lease("conv-1")
    picks = {lease("conv-1").account.name for _ in range(3)}
    assert picks == {first.account.name}  # not round robin any more
    spread = {lease().account.name for _ in range(4)}
    assert spread == {"a", "b"}  # requests without a key are spread as before
    # header-based key
    by_header = lease(headers={"session-id": "s-9"}).account.name
    assert lease(headers={"session-id": "s-9"}).account.name == by_header
    # the remembered account cools down: another is picked and remembered
    pool.report(first.account, OpenAIError(429, "slow down"))
    other = lease("conv-1").account.name
    assert other != first.account.name and pool.affinity("pck:conv-1") == other
    # TTL expiry forgets it
    clock[0] += 61
    assert pool.affinity("pck:conv-1") is None


def test_keys_are_stripped_and_inner_whitespace_refused_without_naming_the_key():
    assert Account("a", "  sk-pasted-with-newline\n").key == "sk-pasted-with-newline"
    with pytest.raises(ValueError) as info:
        Account("a", "sk-abc \x00secretpart")
    assert "secretpart" not in str(info.value)
