"""What a client sees when the provider refuses, breaks or cannot be reached:
the provider's status and message in OpenAI's shape, or a 502/504 naming it."""

import httpx
import pytest

from conftest import chat
from configs import ALICE_KEY, closed_port_url, llm_config

AUTH = {"apikey": ALICE_KEY}


def error_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    return body["error"]


def test_rate_limit_keeps_status_message_and_retry_after(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(
        status=429,
        retry_after="7",
        error_body='{"error":{"message":"Rate limit reached for gpt-4o on tokens per min","type":"tokens","code":"rate_limit_exceeded"}}',
        times=1,
    )
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 429)
    assert err["message"] == "Rate limit reached for gpt-4o on tokens per min"
    assert err["type"] == "rate_limit_error"
    assert r.headers["retry-after"] == "7"
    (line,) = gw.access_log(wait_for=1)
    assert line["status"] == 429 and line["ai"]["upstream_status"] == 429


def test_provider_500_is_500(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(status=500, times=1)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 500)
    assert err["message"] == "mock error 500"
    assert "retry-after" not in r.headers
    # A provider failure does not stick: the next request is answered.
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    assert r.status_code == 200, r.text


def test_provider_auth_failure_is_passed_on(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(status=401, error_body='{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}', times=1)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 401)
    assert err["message"] == "Incorrect API key provided"


def test_connection_reset_before_headers_is_502_naming_the_provider(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(fault="reset_before_headers")
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 502)
    assert "openai" in err["message"]
    assert err["type"] == "upstream_error"


def test_reset_on_a_pooled_connection_is_not_resent(mock, gateway_factory):
    """The provider read the whole request before resetting: sending it again
    would run (and bill) the completion twice behind the client's back."""
    gw = gateway_factory(llm_config(mock))
    assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 200  # warms the pool
    mock.reset()
    mock.behave(fault="reset_before_headers", times=1)
    r = gw.http.post("/chat", json=chat("only once please"), headers=AUTH)
    seen = mock.requests()
    assert len(seen) == 1, f"provider received the request {len(seen)} times; client got {r.status_code}"
    err = error_of(r, 502)
    assert "openai" in err["message"]


def test_garbage_answer_is_502_not_a_chat_completion(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(fault="garbage", times=1)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 502)
    assert "not a chat completion" in err["message"]
    assert "openai" in err["message"]


def test_empty_answer_is_502(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(fault="empty_body", times=1)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    assert "not a chat completion" in error_of(r, 502)["message"]


def test_html_error_page_is_wrapped_in_openai_shape(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(fault="html", times=1)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 502)
    assert err["message"].startswith("provider openai answered 502")
    assert "502 Bad Gateway" in err["message"]


def test_answer_cut_mid_body_is_502(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(fault="reset_mid_body", times=1)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 502)
    assert "openai" in err["message"]
    assert "broke off" in err["message"]
    assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 200


def test_unreachable_provider_is_502_naming_it(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, upstream_url=closed_port_url()))
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    err = error_of(r, 502)
    assert "openai" in err["message"]
    assert "could not be reached" in err["message"]
    (line,) = gw.access_log(wait_for=1)
    assert line["status"] == 502 and "openai" in line["error"]


def test_slow_provider_hits_the_read_timeout_as_504(mock, gateway_factory):
    extra = f"""
[[services]]
name = "slow"

[[routes]]
name = "slow-chat"
service = "slow"
paths = ["/slow"]

[[plugins]]
name = "ai-proxy-advanced"
service = "slow"
[plugins.config.balancer]
read_timeout = 200
[[plugins.config.targets]]
route_type = "llm/v1/chat"
[plugins.config.targets.model]
provider = "openai"
name = "gpt-4o"
[plugins.config.targets.model.options]
upstream_url = "{mock.chat_url}"
"""
    gw = gateway_factory(llm_config(mock, extra=extra))
    # The answer would take a minute; the configured read timeout is 200 ms, and
    # the client gives up long after that (3 s) rather than hang the suite.
    mock.behave(latency_ms=60_000, times=1)
    try:
        r = gw.http.post("/slow", json=chat(), timeout=3)
    except httpx.ReadTimeout:
        pytest.fail("no answer: the gateway is still waiting for the provider")
    err = error_of(r, 504)
    assert "openai" in err["message"]
    assert err["type"] == "upstream_timeout"
