"""Passthrough routes: a service with a `url` is proxied as plain HTTP (no LLM
translation), with strip_path, hide_credentials and Kong-shaped errors."""

import hashlib
import json

import pytest

from conftest import chat
from configs import ALICE_KEY, closed_port_url, llm_config, passthrough_block


def passthrough_config(mock, *, url=None, hide_credentials=True, route_extra="", service_extra="") -> str:
    ka = f"""
[[plugins]]
name = "key-auth"
service = "pt"
[plugins.config]
hide_credentials = {"true" if hide_credentials else "false"}
"""
    extra = passthrough_block(url or mock.url, service_extra=service_extra) + route_extra + ka
    return llm_config(mock, extra=extra)


def test_hidden_credentials_and_stripped_path(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock))
    payload = json.dumps(chat("passthrough please"), indent=2).encode()
    r = gw.http.post(
        "/passthrough/v1/chat/completions",
        content=payload,
        headers={"apikey": ALICE_KEY, "content-type": "application/json", "x-custom": "kept"},
    )
    assert r.status_code == 200, r.text
    # No translation: the mock answers with its own default model, untouched.
    assert r.json()["model"] == "mock-model"
    assert r.json()["choices"][0]["message"]["content"] == "mock reply to: passthrough please"
    (seen,) = mock.requests()
    assert seen["path"] == "/v1/chat/completions"
    assert "apikey" not in seen["headers"]
    assert ALICE_KEY not in str(seen)
    assert seen["headers"]["x-custom"] == "kept"
    # The body is forwarded byte for byte (not re-serialised).
    assert seen["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert seen["headers"]["host"] == mock.addr
    (line,) = gw.access_log(wait_for=1)
    assert (line["route"], line["consumer"], line["status"]) == ("passthrough", "alice", 200)
    assert "ai" not in line


def test_credentials_pass_when_not_hidden(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock, hide_credentials=False))
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    r = gw.http.post(f"/passthrough/v1/chat/completions?apikey={ALICE_KEY}&x=1", json=chat())
    assert r.status_code == 200, r.text
    by_header, by_query = mock.requests()
    assert by_header["headers"]["apikey"] == ALICE_KEY
    assert by_query["query"] == f"apikey={ALICE_KEY}&x=1"


def test_hidden_query_key_is_removed_and_other_parameters_kept(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock))
    r = gw.http.post(f"/passthrough/v1/chat/completions?a=1&apikey={ALICE_KEY}&b=two", json=chat())
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["query"] == "a=1&b=two"
    (line,) = gw.access_log(wait_for=1)
    assert line["path"] == "/passthrough/v1/chat/completions"
    assert ALICE_KEY not in gw.log_path.read_text()


def test_strip_path_false_keeps_the_prefix(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock, route_extra="strip_path = false"))
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["path"] == "/passthrough/v1/chat/completions"


def test_service_url_path_is_the_base(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock, url=mock.url + "/openai"))
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["path"] == "/openai/v1/chat/completions"


def test_preserve_host_keeps_the_clients_host(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock, route_extra="preserve_host = true"))
    r = gw.http.post(
        "/passthrough/v1/chat/completions",
        json=chat(),
        headers={"apikey": ALICE_KEY, "host": "api.example.test"},
    )
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["headers"]["host"] == "api.example.test"


def test_upstream_errors_are_relayed_untouched(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock))
    raw = '{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}'
    mock.behave(status=429, retry_after="3", error_body=raw, times=1)
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 429
    assert r.text == raw
    assert r.headers["retry-after"] == "3"
    # Any method and path go through: the mock's own 404 comes back as it is.
    r = gw.http.get("/passthrough/v1/models", headers={"apikey": ALICE_KEY})
    assert r.status_code == 404
    assert "mock: no route for GET /v1/models" in r.json()["error"]["message"]


def test_streams_pass_through(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock))
    mock.behave(chunks=3)
    with gw.http.stream(
        "POST", "/passthrough/v1/chat/completions", json=chat(stream=True), headers={"apikey": ALICE_KEY}
    ) as r:
        assert r.status_code == 200
        events = [l[5:].strip() for l in r.iter_lines() if l.startswith("data:")]
    assert events[-1] == "[DONE]"
    assert len(events) == 1 + 3 + 1 + 1  # role, content, finish, [DONE]
    (seen,) = mock.requests()
    # Passthrough does not add stream_options the way LLM routes do.
    assert "stream_options" not in seen["body"]


def test_missing_key_is_401_in_kong_shape(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock))
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat())
    assert r.status_code == 401
    assert r.json() == {"message": "No API key found in request"}
    assert r.headers["www-authenticate"].startswith("Key")
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": "nope"})
    assert r.status_code == 401
    assert r.json() == {"message": "Unauthorized"}
    assert mock.requests() == []


def test_unreachable_upstream_is_502_in_kong_shape(mock, gateway_factory):
    url = closed_port_url().rsplit("/v1", 1)[0]
    gw = gateway_factory(passthrough_config(mock, url=url))
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 502
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert set(r.json()) == {"message"}


def test_service_read_timeout_gives_504_in_kong_shape(mock, gateway_factory):
    gw = gateway_factory(passthrough_config(mock, service_extra="read_timeout = 300"))
    # The answer would take a minute; the service's read timeout is 300 ms.
    mock.behave(latency_ms=60_000, times=1)
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": ALICE_KEY}, timeout=10)
    assert r.status_code == 504
    assert r.json() == {"message": "The upstream server is timing out"}


def test_key_in_body_on_a_passthrough_route_is_refused_by_config(mock, tmp_path):
    """A passthrough body streams through untouched, so key-auth cannot read a key
    from it; a config asking for that would lock every caller out, so it is refused."""
    import subprocess

    from conftest import bin_dir

    extra = passthrough_block(mock.url) + f"""
[[plugins]]
name = "key-auth"
service = "pt"
[plugins.config]
key_in_body = true
"""
    path = tmp_path / "pt.toml"
    path.write_text(llm_config(mock, extra=extra))
    out = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(path)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "key_in_body works on LLM routes only" in out.stderr
    assert "passthrough" in out.stderr
