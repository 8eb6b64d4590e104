"""server.max_request_body_size: big requests within the limit are proxied intact,
bigger ones are refused with 413 before anything reaches the provider."""

import json
import socket

import pytest

from conftest import chat
from configs import ALICE_KEY, llm_config, passthrough_block, server_table

AUTH = {"apikey": ALICE_KEY, "content-type": "application/json"}
DEFAULT_LIMIT = 8 * 1024 * 1024


def assert_413(r, limit: int):
    assert r.status_code == 413, r.text[:300]
    err = r.json()["error"]
    assert str(limit) in err["message"]
    assert "max_request_body_size" in err["message"]
    assert err["type"] == "invalid_request_error"


def test_4mib_request_reaches_the_provider_intact(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    system = "You are a mathematician"
    # Baseline: the same request with a short message, to learn the framing size.
    small = "s" * 10
    r = gw.http.post("/chat", json=chat(small), headers=AUTH)
    assert r.status_code == 200, r.text
    base_len = mock.requests()[0]["body_len"]
    mock.reset()

    marker = "BIG-MESSAGE-HEAD-0123456789-abcdefghijklmnopqrstuvwxyz-END"  # 58 chars
    big = marker + "".join(chr(ord("a") + i % 26) for i in range(4 * 1024 * 1024)) + "TAIL"
    r = gw.http.post("/chat", json=chat(big), headers=AUTH)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    # The provider echoes the first 60 characters of the last user message...
    assert body["choices"][0]["message"]["content"] == f"mock reply to: {big[:60]}"
    # ...and counts every character of the prompt: nothing was cut or altered.
    assert body["usage"]["prompt_tokens"] == -(-(len(system) + len(big)) // 4)
    (seen,) = mock.requests()
    assert seen["body_len"] > 4 * 1024 * 1024
    assert seen["body_len"] == base_len - len(small) + len(big)


def test_body_of_exactly_the_limit_passes_one_more_byte_is_413(mock, gateway_factory):
    limit = 4096
    gw = gateway_factory(llm_config(mock, server=server_table(max_request_body_size=limit)))

    def body_of(size: int) -> bytes:
        frame = json.dumps(chat(""), separators=(",", ":")).encode()
        b = json.dumps(chat("y" * (size - len(frame))), separators=(",", ":")).encode()
        assert len(b) == size
        return b

    r = gw.http.post("/chat", content=body_of(limit), headers=AUTH)
    assert r.status_code == 200, r.text
    r = gw.http.post("/chat", content=body_of(limit + 1), headers=AUTH)
    assert_413(r, limit)
    assert len(mock.requests()) == 1


def test_over_the_default_limit_is_413(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    r = gw.http.post("/chat", json=chat("z" * (DEFAULT_LIMIT + 1024)), headers=AUTH)
    assert_413(r, DEFAULT_LIMIT)
    assert mock.requests() == []
    (line,) = gw.access_log(wait_for=1)
    assert line["status"] == 413


def test_chunked_body_over_the_limit_is_413(mock, gateway_factory):
    limit = 2048
    gw = gateway_factory(llm_config(mock, server=server_table(max_request_body_size=limit)))
    payload = json.dumps(chat("c" * 10_000)).encode()

    def pieces():
        for i in range(0, len(payload), 1000):
            yield payload[i : i + 1000]

    r = gw.http.post("/chat", content=pieces(), headers=AUTH)
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert_413(r, limit)
    assert mock.requests() == []


def test_chunked_body_within_the_limit_is_served(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, server=server_table(max_request_body_size=4096)))
    payload = json.dumps(chat("chunked hello")).encode()
    r = gw.http.post("/chat", content=(payload[i : i + 7] for i in range(0, len(payload), 7)), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to: chunked hello"


def test_declared_oversize_is_refused_before_the_body_is_sent(mock, gateway_factory):
    """With `Expect: 100-continue` a client waits before uploading: the gateway must
    answer 413 from the Content-Length alone instead of inviting the upload."""
    limit = 2048
    gw = gateway_factory(llm_config(mock, server=server_table(max_request_body_size=limit)))
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(
            (
                "POST /chat HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{gw.port}\r\n"
                f"apikey: {ALICE_KEY}\r\n"
                "Content-Type: application/json\r\n"
                "Content-Length: 10000000\r\n"
                "Expect: 100-continue\r\n\r\n"
            ).encode()
        )
        got = b""
        while b"\r\n\r\n" not in got:
            data = s.recv(65536)
            assert data, f"connection closed early: {got!r}"
            got += data
    status_line = got.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    assert mock.requests() == []


def test_passthrough_route_enforces_the_limit_too(mock, gateway_factory):
    extra = passthrough_block(mock.url)
    gw = gateway_factory(llm_config(mock, server=server_table(max_request_body_size=2048), extra=extra))
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat("p" * 10_000))
    assert r.status_code == 413, f"{r.status_code}: upstream received {[x['body_len'] for x in mock.requests()]} bytes"
    assert mock.requests() == []


def test_expect_100_continue_within_the_limit_is_invited_and_served(mock, gateway_factory):
    """curl sends `Expect: 100-continue` for bodies over 1 MiB and waits for the go-ahead."""
    gw = gateway_factory(llm_config(mock))
    body = json.dumps(chat("expect me")).encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(
            (
                "POST /chat HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{gw.port}\r\n"
                f"apikey: {ALICE_KEY}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Expect: 100-continue\r\n\r\n"
            ).encode()
        )
        interim = s.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        s.sendall(body)
        got = b""
        while b"mock reply to" not in got:
            data = s.recv(65536)
            assert data, got
            got += data
    assert got.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
    assert b"mock reply to: expect me" in got
