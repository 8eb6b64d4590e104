"""Server-sent event streams: relayed event by event, usage handled for the
client, a client hang-up stops the provider, a provider break is reported."""

import json
import socket

from conftest import chat
from configs import ALICE_KEY, llm_config, poll, sse_events

AUTH = {"apikey": ALICE_KEY}


def stream_events(gw, body, headers=AUTH):
    with gw.http.stream("POST", "/chat", json=body, headers=headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return sse_events(r.iter_lines())


def content_of(events) -> str:
    text = ""
    for e in events:
        if e == "[DONE]":
            continue
        for c in json.loads(e).get("choices", []):
            text += c.get("delta", {}).get("content") or ""
    return text


def test_stream_is_relayed_event_by_event(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(chunks=6)
    events = stream_events(gw, chat("Tell me a story", stream=True))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert content_of(events) == "mock reply to: Tell me a story"
    # role chunk + 6 content chunks + finish chunk, no usage chunk.
    assert len(chunks) == 8
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_usage_chunk_is_requested_but_dropped_when_client_did_not_ask(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    events = stream_events(gw, chat(stream=True))
    (seen,) = mock.requests()
    assert seen["body"]["stream"] is True
    assert seen["body"]["stream_options"]["include_usage"] is True
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    assert all(c.get("usage") is None for c in chunks), "no usage reaches a client that did not ask"
    assert all(c["choices"] for c in chunks)
    # The gateway still read the usage it asked for: the access log has the real numbers.
    (line,) = gw.access_log(wait_for=1)
    usage = line["ai"]["usage"]
    assert usage["completion_tokens"] == 8 and usage["estimated"] is False
    assert usage["total_tokens"] == usage["prompt_tokens"] + 8


def test_usage_chunk_is_kept_when_client_asked(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(chunks=3, completion_tokens=42)
    events = stream_events(gw, chat(stream=True, stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == 42
    assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + 42
    assert content_of(events) == "mock reply to: What is 1+1?"


def test_first_event_arrives_while_the_provider_is_still_streaming(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(chunks=5, chunk_delay_ms=300)
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers=AUTH) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(l for l in lines if l.startswith("data:"))
        assert json.loads(first[5:])["choices"][0]["delta"]["role"] == "assistant"
        # The provider has not finished: the gateway did not buffer the answer.
        assert mock.stats()["open_streams"] == 1
        rest = sse_events(lines)
    assert rest[-1] == "[DONE]"
    assert content_of([first[5:].strip()] + rest) == "mock reply to: What is 1+1?"
    stats = poll(lambda: (s := mock.stats())["open_streams"] == 0 and s)
    assert stats and stats["cancelled_streams"] == 0


def _raw_stream_request(gw, body: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    head = (
        "POST /chat HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{gw.port}\r\n"
        f"apikey: {ALICE_KEY}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    s.sendall(head + body)
    return s


def test_client_disconnect_cancels_the_provider_stream(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    # 100 events 100 ms apart: ten seconds unless the gateway hangs up early.
    mock.behave(chunks=100, chunk_delay_ms=100)
    s = _raw_stream_request(gw, json.dumps(chat(stream=True)).encode())
    got = b""
    while b"data: " not in got:
        data = s.recv(65536)
        assert data, "gateway closed before the first event"
        got += data
    assert got.startswith(b"HTTP/1.1 200")
    assert mock.stats()["open_streams"] == 1
    s.close()
    stats = poll(lambda: (st := mock.stats())["cancelled_streams"] == 1 and st, timeout=5)
    assert stats, f"provider stream still running after the client left: {mock.stats()}"
    assert stats["open_streams"] == 0
    (line,) = gw.access_log(wait_for=1)
    assert line["ai"]["client_cancelled"] is True
    assert line["ai"]["request_mode"] == "stream"
    # The gateway keeps serving afterwards.
    mock.behave(chunks=2, chunk_delay_ms=0)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    assert r.status_code == 200, r.text


def test_provider_breaking_mid_stream_ends_with_an_error_event(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(chunks=8, fault="reset_mid_stream", times=1)
    events = stream_events(gw, chat(stream=True))
    assert "[DONE]" not in events, "a cut stream must not look complete"
    err = json.loads(events[-1])
    assert err["error"]["type"] == "upstream_error"
    assert "openai" in err["error"]["message"]
    # What arrived before the break was relayed.
    assert content_of(events[:-1]).startswith("mock")
    (line,) = gw.access_log(wait_for=1)
    # The usage chunk never came: the gateway estimated it and says so.
    assert line["ai"]["usage"]["estimated"] is True
    assert "stream broke" in line["error"]
    # The next request is served normally.
    events = stream_events(gw, chat(stream=True))
    assert events[-1] == "[DONE]"


def test_provider_error_on_a_stream_request_is_plain_json(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(status=503, times=1)
    r = gw.http.post("/chat", json=chat(stream=True), headers=AUTH)
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["message"] == "mock error 503"
