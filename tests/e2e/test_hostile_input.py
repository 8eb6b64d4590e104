"""Hostile input from the edge: malformed bytes, absurd shapes and numbers,
header floods, attempts to steer the upstream URL or credentials. Each gets a
clear 4xx and the gateway stays up; nothing reaches a provider it should not."""

import json
import socket

import pytest

from conftest import chat
from configs import ALICE_KEY, BOB_KEY, llm_config

AUTH = {"apikey": ALICE_KEY, "content-type": "application/json"}


@pytest.fixture
def gw(mock, gateway_factory):
    return gateway_factory(llm_config(mock))


def still_serves(gw):
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    assert r.status_code == 200, r.text


def test_invalid_utf8_is_400(gw, mock):
    body = b'{"messages":[{"role":"user","content":"\xff\xfe bad"}]}'
    r = gw.http.post("/chat", content=body, headers=AUTH)
    assert r.status_code == 400 and "error" in r.json()
    assert mock.requests() == []
    still_serves(gw)


def test_deeply_nested_json_is_400_quickly(gw, mock):
    r = gw.http.post("/chat", content=b'{"messages":' + b"[" * 200_000 + b"]" * 200_000 + b"}", headers=AUTH)
    assert r.status_code == 400, r.text[:200]
    assert mock.requests() == []
    still_serves(gw)


def test_huge_arrays_within_the_body_limit_are_judged_not_crashed(gw, mock):
    many = {"messages": [{"role": "user", "content": "x"}] * 100_000}
    r = gw.http.post("/chat", content=json.dumps(many).encode(), headers=AUTH)
    assert r.status_code in (200, 400), r.text[:300]
    stop = {"messages": chat()["messages"], "stop": ["x"] * 100_000}
    r = gw.http.post("/chat", json=stop, headers=AUTH)
    assert r.status_code in (200, 400), r.text[:300]
    still_serves(gw)


@pytest.mark.parametrize("field,value", [
    ("max_tokens", "1e400"),
    ("max_tokens", "-5"),
    ("max_tokens", "18446744073709551616"),
    ("temperature", "1e309"),
    ("temperature", '"hot"'),
    ("n", "-1"),
    ("top_p", "[]"),
])
def test_numbers_out_of_range_or_of_the_wrong_type_are_400(gw, mock, field, value):
    body = json.dumps(chat())[:-1] + f', "{field}": {value}}}'
    r = gw.http.post("/chat", content=body.encode(), headers=AUTH)
    assert r.status_code == 400, r.text
    assert mock.requests() == []


@pytest.mark.parametrize("model", ["../../../v1/evil", "a/b?x=1#frag", "a%2Fb", "m\r\nX-Injected: 1", "..%2F..%2Fevil"])
def test_a_model_name_cannot_change_the_provider_url(mock, gateway_factory, model):
    gw = gateway_factory(llm_config(mock, provider="gemini", model_name=None, upstream_url=mock.url,
                                    auth='header_name = "x-goog-api-key", header_value = "g-key"'))
    r = gw.http.post("/chat", json=chat(model=model), headers=AUTH)
    assert r.status_code < 500, r.text
    for seen in mock.requests():
        assert seen["path"].startswith("/v1beta/models/"), seen["path"]
        rest = seen["path"][len("/v1beta/models/"):]
        assert "/" not in rest and "?" not in rest and "#" not in rest, seen["path"]
        assert "x-injected" not in seen["headers"]
        assert not seen.get("query") or "x=1" not in seen["query"]


def test_the_request_cannot_steer_the_upstream_or_its_credential(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    body = {**chat(), "upstream_url": "http://127.0.0.1:1/evil", "auth": {"header_value": "Bearer mine"}}
    headers = {**AUTH, "host": "evil.example", "x-forwarded-host": "evil.example",
               "authorization": "Bearer sk-client-own", "x-upstream-url": "http://127.0.0.1:1"}
    r = gw.http.post("/chat", json=body, headers=headers)
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer sk-provider-e2e"
    assert seen["headers"]["host"].startswith("127.0.0.1:")
    assert "x-forwarded-host" not in seen["headers"] and "x-upstream-url" not in seen["headers"]


def test_duplicated_and_empty_keys_never_authenticate(gw, mock):
    # Two apikey headers: the gateway judges one of them, never "any".
    raw = (b"POST /chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
           b"apikey: wrong-key\r\napikey: " + ALICE_KEY.encode() + b"\r\n")
    body = json.dumps(chat()).encode()
    answer = send_raw(gw, raw + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    for key in [b"", b" ", b"\t"]:
        answer = send_raw(gw, b"POST /chat HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\napikey: " + key
                          + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert answer.startswith(b"HTTP/1.1 401"), (key, answer[:200])
    # A valid key in the query and a wrong one in the header: the header is read first.
    r = gw.http.post(f"/chat?apikey={BOB_KEY}", json=chat(), headers={"apikey": "wrong"})
    assert r.status_code == 401
    assert mock.requests() == []


def test_header_floods_are_refused_and_the_gateway_stays_up(gw):
    many = b"".join(f"x-h{i}: v\r\n".encode() for i in range(2000))
    answer = send_raw(gw, b"GET /chat HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n")
    assert answer == b"" or answer[9:10] == b"4", answer[:100]
    huge = b"x-big: " + b"a" * (2 * 1024 * 1024) + b"\r\n"
    answer = send_raw(gw, b"GET /chat HTTP/1.1\r\nhost: x\r\n" + huge + b"\r\n")
    assert answer == b"" or answer[9:10] == b"4", answer[:100]
    still_serves(gw)


def send_raw(gw, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return out
