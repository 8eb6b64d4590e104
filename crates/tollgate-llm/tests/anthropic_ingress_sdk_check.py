"""Feeds what the Anthropic ingress renders through the official `anthropic`
Python SDK, as a client of the gateway would read it: streams through
`client.messages.stream(...)` (the SDK's SSE decoder and accumulator),
answers through `client.messages.create(...)`, then strict validation of
every object with the SDK's pydantic models.

    ANTHROPIC_INGRESS_DUMP=/tmp/anth cargo test -p tollgate-llm --test anthropic_ingress
    /path/to/venv/bin/python crates/tollgate-llm/tests/anthropic_ingress_sdk_check.py /tmp/anth

Needs the `anthropic` package (checked with 2.16.0); no network.
"""

import json
import pathlib
import sys

import anthropic
from anthropic.types import Message

try:  # the SDK's own HTTP client (2.x vendors httpx as httpx2)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

from anthropic.types.model_info import ModelInfo

DUMP = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/anth")


def client_for(body: bytes, content_type: str, status: int = 200) -> anthropic.Anthropic:
    def handler(request):
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    return anthropic.Anthropic(
        api_key="test",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


REQUEST = dict(model="m", max_tokens=1024, messages=[{"role": "user", "content": "hi"}])


def streamed(name: str) -> Message:
    client = client_for((DUMP / name).read_bytes(), "text/event-stream")
    with client.messages.stream(**REQUEST) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    # The accumulated message must validate strictly, as a JSON answer would.
    Message.model_validate(json.loads(final.model_dump_json()))
    print(f"{name}: {len(events)} events, content {[b.type for b in final.content]}, "
          f"stop {final.stop_reason}, usage {final.usage.input_tokens}/{final.usage.output_tokens}")
    return final


def answered(name: str) -> Message:
    body = (DUMP / name).read_bytes()
    Message.model_validate_json(body)
    msg = client_for(body, "application/json").messages.create(**REQUEST)
    print(f"{name}: content {[b.type for b in msg.content]}, stop {msg.stop_reason}")
    return msg


def main() -> None:
    m = streamed("stream_text.sse")
    assert m.id == "msg_req7" and m.model == "gemini-2.0-flash"
    assert m.content[0].text == 'The quick brown fox jumps "high".'
    assert m.stop_reason == "end_turn"
    # Input figures arrive in message_delta: the SDK must take them from there.
    assert (m.usage.input_tokens, m.usage.output_tokens) == (8, 7), m.usage

    m = streamed("stream_tools.sse")
    tools = [b for b in m.content if b.type == "tool_use"]
    assert [t.name for t in tools] == ["get_current_temperature", "get_current_time"]
    assert tools[0].input == {"location": "Boston, MA"}
    assert m.stop_reason == "tool_use"
    assert (m.usage.input_tokens, m.usage.cache_read_input_tokens) == (63, 32), m.usage

    m = streamed("stream_thinking.sse")
    assert [b.type for b in m.content] == ["thinking", "redacted_thinking", "text", "tool_use"]
    assert m.content[0].thinking == "The user wants a haiku."
    assert m.content[0].signature == "EqQBCgIYAhIM"
    assert m.content[1].data == "EmwKAhgBEgy3va3pzix"
    assert m.content[3].input == {"poem": "haiku"}
    assert (m.usage.input_tokens, m.usage.cache_creation_input_tokens, m.usage.cache_read_input_tokens) == (70, 30, 20)

    try:
        streamed("stream_error.sse")
        raise AssertionError("the error event must raise")
    except anthropic.APIStatusError as e:
        print(f"stream_error.sse: raised {type(e).__name__}: {e.body}")
        assert e.body["error"]["type"] == "api_error"

    m = answered("answer_tools.json")
    assert m.content[0].input == {"location": "London"}
    m = answered("answer_thinking.json")
    assert [b.type for b in m.content] == ["thinking", "redacted_thinking", "text"]

    try:
        client_for((DUMP / "error_529.json").read_bytes(), "application/json", 529).messages.create(**REQUEST)
        raise AssertionError("529 must raise")
    except anthropic.APIStatusError as e:
        print(f"error_529.json: raised {type(e).__name__}: {e.message}")
        assert type(e).__name__ == "OverloadedError", type(e)

    page = client_for((DUMP / "models.json").read_bytes(), "application/json").models.list()
    ids = [ModelInfo.model_validate(m.model_dump()).id for m in page.data]
    assert ids == ["claude-sonnet-4-5", "gemini-2.5-flash"], ids
    print(f"models.json: {ids}")
    print("all parsed by anthropic", anthropic.__version__)


if __name__ == "__main__":
    main()
