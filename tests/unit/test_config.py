import pytest

from mimo_asgi.config import accounts_from_env, load_accounts


def test_toml_accounts(tmp_path):
    path = tmp_path / "mimo.toml"
    path.write_text('''
[[accounts]]
name = "tp-cn"
api_key_env = "KEY_ONE"
max_concurrency = 2
[accounts.models]
"gpt-5*" = "mimo-v2.5-pro"

[[accounts]]
name = "payg"
api_key = "sk-inline"
base_url = "https://api.xiaomimimo.com/v1"
native_web_search = true
''')
    first, second = load_accounts(path, {"KEY_ONE": "tp-fromenv"})
    assert first.name == "tp-cn" and first.key == "tp-fromenv" and first.max_concurrency == 2
    assert first.is_token_plan and first.upstream_model("gpt-5.5") == "mimo-v2.5-pro"
    assert not first.allows_native_web_search
    assert second.key == "sk-inline" and second.allows_native_web_search and second.is_mimo


@pytest.mark.parametrize("text", ['[[accounts]]\nname = "x"\n', '[[accounts]]\napi_key = "k"\nbogus = 1\n',
                                  '[[accounts]]\napi_key_env = "MISSING"\n', 'x = 1\n'])
def test_bad_toml_is_a_clear_error(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError):
        load_accounts(path, {})


def test_env_account():
    assert accounts_from_env({}) == []
    (account,) = accounts_from_env({"MIMO_API_KEY": "sk-k", "MIMO_MODEL_MAP": "gpt-5*=mimo-v2.5-pro,o3=mimo-v2-pro"})
    assert account.upstream_model("o3") == "mimo-v2-pro" and account.upstream_model("gpt-5.5") == "mimo-v2.5-pro"
    assert account.chat_url == "https://api.xiaomimimo.com/v1/chat/completions"


def test_redis_url_from_the_file_and_the_environment(tmp_path):
    from mimo_asgi.config import config_from_env, load_config

    path = tmp_path / "mimo.toml"
    path.write_text('redis_url = "redis://:s3cret@cache:6379/0"\n[[accounts]]\napi_key = "sk-inline"\n')
    assert load_config(path, {}).redis_url == "redis://:s3cret@cache:6379/0"
    assert "s3cret" not in repr(load_config(path, {}))
    env = {"MIMO_ASGI_CONFIG": str(path)}
    assert config_from_env(env).redis_url == "redis://:s3cret@cache:6379/0"
    assert config_from_env({**env, "MIMO_ASGI_REDIS_URL": "redis://other:6380/1"}).redis_url == "redis://other:6380/1"
    from_key = config_from_env({"MIMO_API_KEY": "sk-k", "MIMO_ASGI_REDIS_URL": " unix:///run/redis.sock "})
    assert from_key.redis_url == "unix:///run/redis.sock" and [a.name for a in from_key.accounts] == ["default"]
    assert config_from_env({"MIMO_API_KEY": "sk-k"}).redis_url is None and config_from_env({}).accounts == []


@pytest.mark.parametrize("value", ['"http://cache:6379"', "6379", '"s3cret@cache"'])
def test_a_bad_redis_url_is_a_clear_error_without_the_url(tmp_path, value):
    from mimo_asgi.config import config_from_env, load_config

    path = tmp_path / "mimo.toml"
    path.write_text(f'redis_url = {value}\n[[accounts]]\napi_key = "sk-inline"\n')
    with pytest.raises(ValueError) as bad:
        load_config(path, {})
    assert "s3cret" not in str(bad.value) and "redis_url" in str(bad.value)
    with pytest.raises(ValueError):
        config_from_env({"MIMO_API_KEY": "sk-k", "MIMO_ASGI_REDIS_URL": "s3cret@cache"})
