"""The official OpenAI Python SDK pointed at tollgate: what an application sees.

The SDK appends `/chat/completions` to its base_url, so the route is the prefix
`/openai` and base_url is `<gateway>/openai`."""

import openai
import pytest
from openai import OpenAI

from configs import ALICE_KEY, PROVIDER_KEY, llm_config, server_table

QUESTION = "What is 1+1?"
MESSAGES = [
    {"role": "system", "content": "You are a mathematician"},
    {"role": "user", "content": QUESTION},
]


def sdk(gw, key: str = ALICE_KEY) -> OpenAI:
    return OpenAI(
        base_url=gw.url + "/openai",
        api_key="unused",
        default_headers={"apikey": key},
        max_retries=0,
        timeout=30,
    )


@pytest.fixture
def client_and_mock(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, path="/openai"))
    client = sdk(gw)
    yield client, mock, gw
    client.close()


def test_plain_completion_returns_content_and_usage(client_and_mock):
    client, mock, _ = client_and_mock
    resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == f"mock reply to: {QUESTION}"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "gpt-4o"
    # The mock counts ceil(chars / 4) prompt tokens and one completion token per chunk (8).
    chars = sum(len(m["content"]) for m in MESSAGES)
    assert resp.usage.prompt_tokens == -(-chars // 4)
    assert resp.usage.completion_tokens == 8
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + 8
    (seen,) = mock.requests()
    # The SDK's own bearer token ("unused") is replaced by the provider key.
    assert seen["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"


def test_streaming_yields_deltas_and_final_usage(client_and_mock):
    client, mock, _ = client_and_mock
    mock.behave(chunks=4)
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"mock reply to: {QUESTION}"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 4, "each provider piece arrives as its own delta"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert last.usage.total_tokens == last.usage.prompt_tokens + 4
    # Only the last chunk carries usage.
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_include_usage_has_no_usage_chunk(client_and_mock):
    client, mock, _ = client_and_mock
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"mock reply to: {QUESTION}"
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks), "no usage-only chunk (empty choices) reaches the client"
    # ...although the gateway asked the provider for it.
    (seen,) = mock.requests()
    assert seen["body"]["stream_options"]["include_usage"] is True


def test_wrong_key_raises_authentication_error(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, path="/openai"))
    with sdk(gw, key="not-a-key") as client:
        with pytest.raises(openai.AuthenticationError) as exc:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert exc.value.status_code == 401
    assert "Unauthorized" in exc.value.message
    assert exc.value.type == "authentication_error"
    assert mock.requests() == []


def test_oversized_request_raises_413_naming_the_limit(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, path="/openai", server=server_table(max_request_body_size=2048)))
    big = [{"role": "user", "content": "x" * 5000}]
    with sdk(gw) as client:
        with pytest.raises(openai.APIStatusError) as exc:
            client.chat.completions.create(model="gpt-4o", messages=big)
    assert exc.value.status_code == 413
    assert "2048" in exc.value.message
    assert "max_request_body_size" in exc.value.message
    assert mock.requests() == []


def test_other_model_raises_bad_request_with_model_not_found(client_and_mock):
    client, mock, _ = client_and_mock
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert exc.value.code == "model_not_found"
    assert "is not available on this route" in exc.value.message
    assert mock.requests() == []


def test_provider_rate_limit_surfaces_as_rate_limit_error(client_and_mock):
    client, mock, _ = client_and_mock
    mock.behave(status=429, retry_after="7", times=1)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert exc.value.status_code == 429
    assert exc.value.response.headers["retry-after"] == "7"
    assert "mock error 429" in exc.value.message
    # The next call goes through: the override was for one request only.
    resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert resp.choices[0].message.content == f"mock reply to: {QUESTION}"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Adds numbers",
            "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
    }
]


def test_tool_calls_come_back_intact(client_and_mock):
    client, mock, _ = client_and_mock
    mock.behave(tool_call=True)
    resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "add"
    assert call.function.arguments == '{"x":1}'
    (seen,) = mock.requests()
    assert seen["body"]["tools"] == TOOLS


def test_streamed_tool_call_reassembles(client_and_mock):
    client, mock, _ = client_and_mock
    mock.behave(tool_call=True)
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=TOOLS, stream=True)
    name, args, finish = "", "", None
    for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                name += tc.function.name or ""
                args += tc.function.arguments or ""
            finish = c.finish_reason or finish
    assert (name, args, finish) == ("add", '{"x":1}', "tool_calls")


def test_usage_is_estimated_when_the_provider_reports_none(client_and_mock):
    client, mock, gw = client_and_mock
    mock.behave(omit_usage=True, times=1)
    resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert resp.choices[0].message.content == f"mock reply to: {QUESTION}"
    assert resp.usage is None  # the answer is relayed as the provider sent it
    (line,) = gw.access_log(wait_for=1)
    usage = line["ai"]["usage"]
    # Counted with the o200k tokenizer and marked as an estimate.
    assert usage["estimated"] is True
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
