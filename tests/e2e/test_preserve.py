"""route_type "preserve": a native request goes to the provider unchanged, with
only the credential (and the provider's format headers) added, and the native
answer comes back unchanged; usage is still read for logs and limits."""

import json

from configs import ALICE_KEY, PROVIDER_KEY, llm_config

NATIVE = {
    "model": "claude-3-5-haiku-20241022",
    "max_tokens": 64,
    "system": "You are a mathematician",
    "messages": [{"role": "user", "content": "What is 1+1?"}],
}


def gateway(mock, gateway_factory):
    cfg = llm_config(
        mock,
        provider="anthropic",
        model_name="claude-3-5-haiku-20241022",
        auth=f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"',
        upstream_url=f"{mock.url}/v1/messages",
    ).replace('route_type = "llm/v1/chat"', 'route_type = "preserve"')
    return gateway_factory(cfg)


def test_native_request_and_answer_pass_unchanged(mock, gateway_factory):
    gw = gateway(mock, gateway_factory)
    r = gw.http.post("/chat", json=NATIVE, headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    answer = r.json()
    # Anthropic's own shape, not OpenAI's.
    assert answer["type"] == "message" and answer["content"][0]["text"].startswith("mock reply to:")
    (seen,) = mock.requests()
    assert seen["body"] == NATIVE
    assert seen["headers"]["x-api-key"] == PROVIDER_KEY
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert ALICE_KEY not in json.dumps(seen)
    (line,) = gw.access_log(wait_for=1)
    assert line["ai"]["usage"]["total_tokens"] > 0


def test_native_stream_passes_unchanged_and_errors_keep_their_shape(mock, gateway_factory):
    gw = gateway(mock, gateway_factory)
    with gw.http.stream("POST", "/chat", json={**NATIVE, "stream": True}, headers={"apikey": ALICE_KEY}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert "event: message_start" in text and "event: message_stop" in text
    assert "chat.completion.chunk" not in text
    (line,) = gw.access_log(wait_for=1)
    assert line["ai"]["usage"]["completion_tokens"] > 0

    mock.behave(status=529, times=1)
    r = gw.http.post("/chat", json=NATIVE, headers={"apikey": ALICE_KEY})
    assert r.status_code == 529
    assert r.json()["type"] == "error"  # Anthropic's error body, as sent


def test_a_client_key_sent_in_the_body_never_reaches_the_provider(mock, gateway_factory):
    cfg = llm_config(
        mock,
        provider="anthropic",
        model_name="claude-3-5-haiku-20241022",
        auth=f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"',
        upstream_url=f"{mock.url}/v1/messages",
        key_auth="key_in_body = true",
    ).replace('route_type = "llm/v1/chat"', 'route_type = "preserve"')
    gw = gateway_factory(cfg)
    r = gw.http.post("/chat", json={**NATIVE, "apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert "apikey" not in seen["body"] and ALICE_KEY not in json.dumps(seen)
    assert seen["body"] == NATIVE
