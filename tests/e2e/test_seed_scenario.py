"""The "Securing MCP server traffic" tutorial, entity for entity, through the real binaries:
conf/examples/secure-mcp-traffic.toml pointed at the mock provider."""

from conftest import ROOT, chat, strip_server, with_upstream

PROVIDER_KEY = "sk-provider-test-key"
ENV = {"OPENAI_API_KEY": PROVIDER_KEY}


def seed_config(mock, extra: str = "") -> str:
    text = (ROOT / "conf/examples/secure-mcp-traffic.toml").read_text()
    return with_upstream(strip_server(text), mock.chat_url) + extra


def test_valid_key_gets_an_openai_answer(mock, gateway_factory):
    gw = gateway_factory(seed_config(mock), env=ENV)
    r = gw.http.post("/llm/v1/chat", json=chat(), headers={"apikey": "secret-chat-key"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["total_tokens"] > 0
    assert r.headers["x-tollgate-llm-model"] == "openai/gpt-4o"


def test_wrong_and_missing_keys_get_401(mock, gateway_factory):
    gw = gateway_factory(seed_config(mock), env=ENV)
    wrong = gw.http.post("/llm/v1/chat", json=chat(), headers={"apikey": "not-the-key"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "Unauthorized"
    assert wrong.headers["www-authenticate"].startswith("Key")
    missing = gw.http.post("/llm/v1/chat", json=chat())
    assert missing.status_code == 401
    assert missing.json()["error"]["message"] == "No API key found in request"
    assert missing.headers["www-authenticate"].startswith("Key")
    assert mock.requests() == [], "a refused request must not reach the provider"


def test_provider_sees_provider_key_never_client_key(mock, gateway_factory):
    gw = gateway_factory(seed_config(mock), env=ENV)
    r = gw.http.post(
        "/llm/v1/chat",
        json=chat(),
        headers={"apikey": "secret-chat-key", "Authorization": "Bearer client-supplied"},
    )
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    flat = str(seen)
    assert "secret-chat-key" not in flat
    assert "client-supplied" not in flat
    assert "apikey" not in seen["headers"]


def test_consumer_override_reaches_the_provider(mock, gateway_factory):
    gw = gateway_factory(seed_config(mock), env=ENV)
    r = gw.http.post("/llm/v1/chat", json=chat(), headers={"apikey": "secret-chat-key"})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["body"]["max_tokens"] == 1024
    assert seen["body"]["temperature"] == 0.7
    assert seen["body"]["model"] == "gpt-4o"


def test_other_consumers_get_the_service_target(mock, gateway_factory):
    extra = """
[[consumers]]
username = "other-client"
keyauth_credentials = [{ key = "other-key" }]
"""
    gw = gateway_factory(seed_config(mock, extra), env=ENV)
    r = gw.http.post("/llm/v1/chat", json=chat(), headers={"apikey": "other-key"})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    # The service's ai-proxy-advanced target: temperature 1.0, not the override's 0.7.
    assert seen["body"]["temperature"] == 1.0
    assert seen["body"]["max_tokens"] == 1024


def test_request_values_win_over_option_defaults(mock, gateway_factory):
    gw = gateway_factory(seed_config(mock), env=ENV)
    r = gw.http.post(
        "/llm/v1/chat", json=chat(max_tokens=5, temperature=0.2), headers={"apikey": "secret-chat-key"}
    )
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["body"]["max_tokens"] == 5
    assert seen["body"]["temperature"] == 0.2


def test_access_log_names_consumer_route_and_usage(mock, gateway_factory):
    gw = gateway_factory(seed_config(mock), env=ENV)
    gw.http.post("/llm/v1/chat", json=chat(), headers={"apikey": "secret-chat-key"})
    gw.http.post("/llm/v1/chat", json=chat(), headers={"apikey": "nope"})
    ok, refused = gw.access_log(wait_for=2)
    assert ok["consumer"] == "chat-client" and ok["route"] == "llm-chat" and ok["status"] == 200
    assert ok["ai"]["provider"] == "openai"
    refused_text = str(refused)
    assert refused["status"] == 401 and "nope" not in refused_text
    # log_statistics is on for the service target only; the consumer's override has it off.
    assert "usage" not in ok["ai"]
    assert PROVIDER_KEY not in gw.log_path.read_text()


def test_the_tutorials_token_limits_are_enforced(mock, gateway_factory):
    """10,000 tokens per minute and 1,000,000 per hour per consumer, fixed windows."""
    gw = gateway_factory(seed_config(mock), env=ENV)
    mock.behave(completion_tokens=4000)
    codes = []
    for _ in range(4):
        r = gw.http.post("/llm/v1/chat", json=chat(), headers={"apikey": "secret-chat-key"})
        codes.append(r.status_code)
        assert r.headers["x-ai-ratelimit-limit-60-openai"] == "10000"
        assert r.headers["x-ai-ratelimit-limit-3600-openai"] == "1000000"
    # Each answer spends about 4,000 tokens: the third no longer fits the minute.
    assert codes[:2] == [200, 200] and codes[-1] == 429, codes
    assert 0 < int(r.headers["retry-after"]) <= 60
