"""Agent clients through tollgate: the official `anthropic` SDK (Claude Code's
Messages API) and the `openai` SDK's Responses API (Codex, the Agents SDK),
each against an Anthropic-format and an OpenAI-format target on the mock,
with the SDK's own key parameter as the only credential.

Routes: /anthropic (Messages -> Anthropic, native), /anthropic-openai
(Messages -> OpenAI chat, translated), /openai (Responses -> OpenAI
Responses, native) and /openai-anthropic (Responses -> Anthropic Messages,
translated)."""

import base64
import json
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from configs import ALICE_KEY, PROVIDER_KEY, poll, sse_events

CLAUDE = "claude-sonnet-4-5-20250929"
GPT = "gpt-4o"
QUESTION = "What is 1+1?"
SESSION = Path(__file__).parent / "fixtures" / "claude_code_session.json"


def service(name: str, path: str, *, llm_format: str, route_type: str, provider: str, model: str, url: str,
            auth: str) -> str:
    return f"""
[[services]]
name = "{name}"

[[routes]]
name = "{name}"
service = "{name}"
paths = ["{path}"]

[[plugins]]
name = "ai-proxy"
service = "{name}"
[plugins.config]
llm_format = "{llm_format}"
route_type = "{route_type}"
auth = {{ {auth} }}
logging = {{ log_statistics = true }}
[plugins.config.model]
provider = "{provider}"
name = "{model}"
[plugins.config.model.options]
upstream_url = "{url}"
"""


def agent_config(mock, extra: str = "") -> str:
    anthropic_auth = f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"'
    openai_auth = f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"'
    return (
        service("claude", "/anthropic", llm_format="anthropic", route_type="llm/v1/chat", provider="anthropic",
                model=CLAUDE, url=f"{mock.url}/v1/messages", auth=anthropic_auth)
        + service("claude-via-openai", "/anthropic-openai", llm_format="anthropic", route_type="llm/v1/chat",
                  provider="openai", model=GPT, url=mock.chat_url, auth=openai_auth)
        + service("responses", "/openai", llm_format="openai", route_type="llm/v1/responses", provider="openai",
                  model=GPT, url=f"{mock.url}/v1/responses", auth=openai_auth)
        + service("responses-via-anthropic", "/openai-anthropic", llm_format="openai",
                  route_type="llm/v1/responses", provider="anthropic", model=CLAUDE,
                  url=f"{mock.url}/v1/messages", auth=anthropic_auth)
        + f"""
[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{ALICE_KEY}" }}]

[[plugins]]
name = "key-auth"
[plugins.config]
key_names = ["apikey", "x-api-key", "authorization"]
"""
        + extra
    )


@pytest.fixture
def gw(mock, gateway_factory):
    return gateway_factory(agent_config(mock))


def claude(gw, path: str = "/anthropic", **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url + path, api_key=ALICE_KEY, max_retries=0, timeout=30, **kw)


def gpt(gw, path: str = "/openai") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + path + "/v1", api_key=ALICE_KEY, max_retries=0, timeout=30)


def only_request(mock) -> dict:
    (seen,) = mock.requests()
    return seen


def assert_provider_credential_only(seen: dict, header: str, value: str) -> None:
    """The provider key was injected and neither of the caller's key headers travelled."""
    assert seen["headers"][header] == value
    for h, v in seen["headers"].items():
        assert ALICE_KEY not in v, f"the caller's key reached the provider in {h}"


TOOLS = [{
    "name": "add",
    "description": "Adds two numbers",
    "input_schema": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
}]


# ---------- Anthropic SDK: Messages ----------

@pytest.mark.parametrize("path", ["/anthropic", "/anthropic-openai"])
def test_messages_create(gw, mock, path):
    msg = claude(gw, path).messages.create(model=CLAUDE if path == "/anthropic" else GPT, max_tokens=256,
                                          system="You are a mathematician",
                                          messages=[{"role": "user", "content": QUESTION}])
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text" and QUESTION in msg.content[0].text
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    seen = only_request(mock)
    if path == "/anthropic":
        assert seen["path"] == "/v1/messages"
        assert_provider_credential_only(seen, "x-api-key", PROVIDER_KEY)
    else:
        # Translated into an OpenAI chat request: the system prompt is a message.
        assert seen["path"] == "/v1/chat/completions"
        assert seen["body"]["messages"][0] == {"role": "system", "content": "You are a mathematician"}
        assert seen["body"]["model"] == GPT
        assert_provider_credential_only(seen, "authorization", f"Bearer {PROVIDER_KEY}")


@pytest.mark.parametrize("path", ["/anthropic", "/anthropic-openai"])
def test_messages_stream(gw, mock, path):
    mock.behave(chunks=4)
    with claude(gw, path).messages.stream(model=CLAUDE if path == "/anthropic" else GPT, max_tokens=256,
                                          messages=[{"role": "user", "content": QUESTION}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"mock reply to: {QUESTION}"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens > 0


@pytest.mark.parametrize("path", ["/anthropic", "/anthropic-openai"])
def test_tool_use_round_trip(gw, mock, path):
    client = claude(gw, path)
    model = CLAUDE if path == "/anthropic" else GPT
    mock.behave(tool_call=True, times=1)
    first = client.messages.create(model=model, max_tokens=256, tools=TOOLS,
                                   messages=[{"role": "user", "content": "add 1"}])
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "add" and call.input == {"x": 1}
    second = client.messages.create(
        model=model, max_tokens=256, tools=TOOLS,
        messages=[
            {"role": "user", "content": "add 1"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "2"}]},
        ])
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"
    # The mock checks that every tool result answers a call of the turn before
    # (in its own format), so the second request arrived consistent.
    assert len(mock.requests()) == 2


def test_streamed_tool_use_from_an_openai_target(gw, mock):
    mock.behave(tool_call=True)
    with claude(gw, "/anthropic-openai").messages.stream(
            model=GPT, max_tokens=256, tools=TOOLS,
            messages=[{"role": "user", "content": "add 1"}]) as stream:
        final = stream.get_final_message()
    (call,) = [b for b in final.content if b.type == "tool_use"]
    assert call.input == {"x": 1} and final.stop_reason == "tool_use"


def test_count_tokens(gw, mock):
    messages = [{"role": "user", "content": "count these words please"}]
    native = claude(gw).messages.count_tokens(model=CLAUDE, messages=messages)
    seen = only_request(mock)
    assert seen["path"] == "/v1/messages/count_tokens"
    assert_provider_credential_only(seen, "x-api-key", PROVIDER_KEY)
    # The mock counts as it bills: the same figure as a Messages request's usage.
    billed = claude(gw).messages.create(model=CLAUDE, max_tokens=64, messages=messages)
    assert native.input_tokens == billed.usage.input_tokens
    # An OpenAI target has no count_tokens: the gateway's tokenizer estimates.
    mock.reset()
    estimated = claude(gw, "/anthropic-openai").messages.count_tokens(model=GPT, messages=messages)
    assert estimated.input_tokens > 0
    assert mock.requests() == []


@pytest.mark.parametrize("path, model", [("/anthropic", CLAUDE), ("/anthropic-openai", GPT)])
def test_models_list(gw, path, model):
    models = claude(gw, path).models.list()
    assert [m.id for m in models.data] == [model]


def test_auth_token_works_and_errors_come_in_anthropics_shape(gw, mock):
    ok = anthropic.Anthropic(base_url=gw.url + "/anthropic", auth_token=ALICE_KEY, max_retries=0)
    assert ok.messages.create(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.AuthenticationError) as e:
        anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key="wrong", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 401
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "authentication_error"
    # Claude Code's header, x-api-key, works too.
    r = httpx.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": ALICE_KEY},
                   json={"model": CLAUDE, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text


def test_bad_requests_are_anthropic_errors(gw, mock):
    r = httpx.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": ALICE_KEY},
                   json={"model": CLAUDE, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in err["error"]["message"]
    r = httpx.post(gw.url + "/anthropic/v1/messages", headers={"x-api-key": ALICE_KEY,
                                                               "content-type": "application/json"},
                   content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert mock.requests() == []


def test_provider_errors_reach_the_sdk_as_anthropic_errors(gw, mock):
    mock.behave(status=529, times=1)
    with pytest.raises(anthropic.APIStatusError) as e:
        claude(gw).messages.create(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 529
    # From an OpenAI target, a 429 is a rate-limit error in Anthropic's shape.
    mock.behave(status=429, times=1)
    with pytest.raises(anthropic.RateLimitError) as e:
        claude(gw, "/anthropic-openai").messages.create(model=GPT, max_tokens=16,
                                                        messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["error"]["type"] == "rate_limit_error"


# ---------- a recorded Claude Code session ----------

CLAUDE_CODE_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "user-agent": "claude-cli/2.0.14 (external, cli)",
    "content-type": "application/json",
    "x-api-key": ALICE_KEY,
}


def post_session(gw, path: str, body: bytes) -> httpx.Response:
    return httpx.post(gw.url + path + "/v1/messages?beta=true", headers=CLAUDE_CODE_HEADERS, content=body,
                      timeout=30)


def test_claude_code_session_reaches_anthropic_byte_for_byte(gw, mock):
    body = SESSION.read_bytes()
    r = post_session(gw, "/anthropic", body)
    assert r.status_code == 200, r.text
    seen = only_request(mock)
    assert base64.b64decode(seen["body_base64"]) == body
    assert seen["headers"]["anthropic-beta"] == CLAUDE_CODE_HEADERS["anthropic-beta"]
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert_provider_credential_only(seen, "x-api-key", PROVIDER_KEY)
    # Anthropic's own stream, relayed as it came: thinking, then the answer.
    events = [json.loads(d) for d in sse_events(r.text.splitlines())]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts[0] == "thinking"
    # The cache marks reached the provider: it reports cache figures.
    usage = events[0]["message"]["usage"]
    assert usage["cache_creation_input_tokens"] > 0


def test_claude_code_session_through_an_openai_target(gw, mock):
    mock.behave(tool_call=True)
    # Claude Code names the route's model when told to (ANTHROPIC_MODEL=gpt-4o).
    body = SESSION.read_bytes().replace(CLAUDE.encode(), GPT.encode())
    r = post_session(gw, "/anthropic-openai", body)
    assert r.status_code == 200, r.text
    seen = only_request(mock)
    sent = seen["body"]
    # The conversation as OpenAI reads it: system first, tool calls and their results paired.
    roles = [m["role"] for m in sent["messages"]]
    assert roles[0] == "system" and "tool" in roles
    calls = [c for m in sent["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert [c["function"]["name"] for c in calls] == ["Read", "Bash"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"file_path": "/home/dev/project/tests/test_dates.py"}
    assert [t["function"]["name"] for t in sent["tools"]] == ["Bash", "Read", "Edit"]
    assert sent["reasoning_effort"] in ("low", "medium", "high")
    assert sent["stream"] is True and sent["stream_options"]["include_usage"] is True
    assert "anthropic-beta" not in seen["headers"]
    # The answer: a streamed tool_use block with the mock's arguments, and usage.
    events = [json.loads(d) for d in sse_events(r.text.splitlines())]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[-1]["type"] == "tool_use" and starts[-1]["name"] == "Bash"
    args = "".join(e["delta"]["partial_json"] for e in events
                   if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta")
    assert json.loads(args) == {"x": 1}
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["output_tokens"] > 0 and delta["usage"]["input_tokens"] > 0


# ---------- OpenAI SDK: Responses ----------

@pytest.mark.parametrize("path", ["/openai", "/openai-anthropic"])
def test_responses_create(gw, mock, path):
    resp = gpt(gw, path).responses.create(model=GPT if path == "/openai" else CLAUDE,
                                          instructions="You are a mathematician", input=QUESTION)
    assert resp.status == "completed"
    assert QUESTION in resp.output_text
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    seen = only_request(mock)
    if path == "/openai":
        assert seen["path"] == "/v1/responses"
        assert seen["body"]["instructions"] == "You are a mathematician"
        assert_provider_credential_only(seen, "authorization", f"Bearer {PROVIDER_KEY}")
    else:
        assert seen["path"] == "/v1/messages"
        assert seen["body"]["system"] == "You are a mathematician"
        assert_provider_credential_only(seen, "x-api-key", PROVIDER_KEY)


@pytest.mark.parametrize("path", ["/openai", "/openai-anthropic"])
def test_responses_stream(gw, mock, path):
    mock.behave(chunks=4)
    with gpt(gw, path).responses.stream(model=GPT if path == "/openai" else CLAUDE, input=QUESTION) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == f"mock reply to: {QUESTION}" == final.output_text
    assert len(deltas) == 4
    assert final.usage.output_tokens == 4


@pytest.mark.parametrize("path", ["/openai", "/openai-anthropic"])
def test_function_call_round_trip(gw, mock, path):
    client = gpt(gw, path)
    model = GPT if path == "/openai" else CLAUDE
    tools = [{"type": "function", "name": "add", "description": "Adds",
              "parameters": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}}]
    mock.behave(tool_call=True, times=1)
    first = client.responses.create(model=model, input="add 1", tools=tools, store=False)
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "add" and json.loads(call.arguments) == {"x": 1}
    items = [{"role": "user", "content": "add 1"}, *[o.model_dump(exclude_none=True) for o in first.output],
             {"type": "function_call_output", "call_id": call.call_id, "output": "2"}]
    second = client.responses.create(model=model, input=items, tools=tools, store=False)
    assert second.status == "completed" and second.output_text


def test_previous_response_id_needs_an_openai_target(gw, mock):
    with pytest.raises(openai.BadRequestError) as e:
        gpt(gw, "/openai-anthropic").responses.create(model=CLAUDE, input="hi", previous_response_id="resp_123")
    assert "previous_response_id" in e.value.message
    assert mock.requests() == []
    # Passed through to OpenAI as it is: the mock knows no such response.
    with pytest.raises(openai.NotFoundError):
        gpt(gw).responses.create(model=GPT, input="hi", previous_response_id="resp_123")
    assert only_request(mock)["body"]["previous_response_id"] == "resp_123"


@pytest.mark.parametrize("path, model", [("/openai", GPT), ("/openai-anthropic", CLAUDE)])
def test_openai_models_list(gw, path, model):
    client = gpt(gw, path)
    assert [m.id for m in client.models.list()] == [model]
    assert client.models.retrieve(model).id == model
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_models_need_a_key(gw):
    r = httpx.get(gw.url + "/openai/v1/models")
    assert r.status_code == 401


# ---------- limits, metrics and logs are the same for every format ----------

def test_token_limits_metrics_and_logs_per_format(mock, gateway_factory):
    limit = """
[[plugins]]
name = "ai-rate-limiting-advanced"
service = "claude-via-openai"
[plugins.config]
llm_providers = [{ name = "openai", window_size = [60], limit = [1000000] }]
"""
    gw = gateway_factory(agent_config(mock, limit))
    msg = claude(gw, "/anthropic-openai").messages.create(model=GPT, max_tokens=64,
                                                          messages=[{"role": "user", "content": "hi"}])
    resp = gpt(gw, "/openai-anthropic").responses.create(model=CLAUDE, input="hi")
    raw = claude(gw, "/anthropic-openai").messages.with_raw_response.create(
        model=GPT, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    remaining = int(raw.headers["x-ai-ratelimit-remaining-60-openai"])
    # The budget was charged the real usage of the first call (and the
    # second's reservation), whatever format the caller spoke.
    assert remaining <= 1000000 - (msg.usage.input_tokens + msg.usage.output_tokens)
    lines = gw.access_log(wait_for=3)
    formats = [l["ai"]["request_format"] for l in lines if "ai" in l]
    assert formats == ["anthropic_messages", "openai_responses", "anthropic_messages"]
    assert lines[1]["ai"]["usage"]["total_tokens"] == resp.usage.total_tokens
    metrics = gw.metrics()
    assert 'request_format="anthropic_messages"' in metrics
    assert 'request_format="openai_responses"' in metrics


# ---------- failover and broken streams ----------

def test_failover_retranslates_for_the_next_provider(mock, gateway_factory):
    """A Messages caller on ai-proxy-advanced: the OpenAI target answers 503,
    the Anthropic target serves the same request in its own format."""
    extra = f"""
[[services]]
name = "mixed"

[[routes]]
name = "mixed"
service = "mixed"
paths = ["/mixed"]

[[plugins]]
name = "ai-proxy-advanced"
service = "mixed"
[plugins.config]
llm_format = "anthropic"
balancer = {{ algorithm = "priority", failover_criteria = ["error", "http_503"] }}
[[plugins.config.targets]]
weight = 100
auth = {{ header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}" }}
model = {{ provider = "openai", name = "{CLAUDE}", options = {{ upstream_url = "{mock.chat_url}" }} }}
[[plugins.config.targets]]
weight = 1
auth = {{ header_name = "x-api-key", header_value = "{PROVIDER_KEY}" }}
model = {{ provider = "anthropic", name = "{CLAUDE}", options = {{ upstream_url = "{mock.url}/v1/messages" }} }}
"""
    gw = gateway_factory(agent_config(mock, extra))
    mock.behave(status=503, times=1)
    msg = claude(gw, "/mixed").messages.create(model=CLAUDE, max_tokens=64, system="Be brief",
                                               messages=[{"role": "user", "content": QUESTION}])
    assert QUESTION in msg.content[0].text
    first, second = mock.requests()
    assert first["path"] == "/v1/chat/completions" and second["path"] == "/v1/messages"
    assert second["body"]["system"] == "Be brief"
    line = gw.access_log(wait_for=1)[-1]
    assert line["ai"]["failed_attempts"] == [f"openai/{CLAUDE}: http_503"]


def test_a_broken_translated_stream_ends_with_the_callers_error_event(gw, mock):
    mock.behave(chunks=8, fault="reset_mid_stream")
    with pytest.raises(anthropic.APIStatusError) as e:
        with claude(gw, "/anthropic-openai").messages.stream(
                model=GPT, max_tokens=64, messages=[{"role": "user", "content": QUESTION}]) as stream:
            for _ in stream.text_stream:
                pass
    assert "stream broke off" in str(e.value) or "ended before its answer did" in str(e.value)
    # Responses callers get response.failed.
    mock.behave(chunks=8, fault="reset_mid_stream")
    r = httpx.post(gw.url + "/openai-anthropic/v1/responses", headers={"authorization": f"Bearer {ALICE_KEY}"},
                   json={"model": CLAUDE, "input": QUESTION, "stream": True}, timeout=30)
    events = [json.loads(d) for d in sse_events(r.text.splitlines())]
    assert events[-1]["type"] == "response.failed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
