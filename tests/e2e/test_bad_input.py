"""Requests the gateway refuses itself: clear 4xx answers in the route's error
shape, and nothing reaches the provider."""

import json

import pytest

from conftest import chat
from configs import ALICE_KEY, llm_config

AUTH = {"apikey": ALICE_KEY}


def assert_openai_error(r, status: int, fragment: str):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"message", "type", "code"}
    assert fragment in body["error"]["message"], body
    return body["error"]


@pytest.fixture
def gw(mock, gateway_factory):
    return gateway_factory(llm_config(mock))


def test_body_that_is_not_json(gw, mock):
    r = gw.http.post("/chat", content=b'{"messages": [', headers={**AUTH, "content-type": "application/json"})
    err = assert_openai_error(r, 400, "not valid JSON")
    assert err["type"] == "invalid_request_error"
    assert mock.requests() == []


def test_wrong_content_type(gw, mock):
    r = gw.http.post("/chat", content=json.dumps(chat()).encode(), headers={**AUTH, "content-type": "text/plain"})
    assert_openai_error(r, 400, "Content-Type must be application/json")
    r = gw.http.post("/chat", content=json.dumps(chat()).encode(), headers=AUTH)  # no Content-Type at all
    assert_openai_error(r, 400, "Content-Type must be application/json")
    assert mock.requests() == []


def test_content_type_with_charset_is_accepted(gw):
    r = gw.http.post(
        "/chat",
        content=json.dumps(chat()).encode(),
        headers={**AUTH, "content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"model": "gpt-4o"}, "'messages' is required"),
        ({"messages": []}, "'messages' must not be empty"),
        ({"messages": "hi"}, "'messages' must be an array"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role 'wizard' is not one of"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role is required"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "'stream' must be a boolean"),
        ([1, 2, 3], "must be a JSON object"),
    ],
)
def test_invalid_chat_requests(gw, mock, body, fragment):
    r = gw.http.post("/chat", json=body, headers=AUTH)
    assert_openai_error(r, 400, fragment)
    assert mock.requests() == []


def test_empty_body(gw, mock):
    r = gw.http.post("/chat", content=b"", headers={**AUTH, "content-type": "application/json"})
    assert_openai_error(r, 400, "empty")
    assert mock.requests() == []


def test_model_other_than_the_configured_one(gw, mock):
    r = gw.http.post("/chat", json=chat(model="gpt-3.5-turbo"), headers=AUTH)
    err = assert_openai_error(r, 400, "is not available on this route")
    assert "gpt-3.5-turbo" in err["message"] and "gpt-4o" in err["message"]
    assert err["code"] == "model_not_found"
    assert mock.requests() == []
    # The configured model by name is fine.
    r = gw.http.post("/chat", json=chat(model="gpt-4o"), headers=AUTH)
    assert r.status_code == 200, r.text


def test_target_without_model_uses_the_requests_model(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, model_name=None))
    r = gw.http.post("/chat", json=chat(model="my-fine-tune"), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "my-fine-tune"
    assert r.headers["x-tollgate-llm-model"] == "openai/*"
    (seen,) = mock.requests()
    assert seen["body"]["model"] == "my-fine-tune"
    # Without a model in the request there is nothing to ask for.
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    assert_openai_error(r, 400, "'model' is required")
    assert len(mock.requests()) == 1


def test_no_route_is_404_in_kong_shape(gw, mock):
    for method, path in [("POST", "/nothing-here"), ("POST", "/chatty"), ("GET", "/chat")]:
        r = gw.http.request(method, path, json=chat(), headers=AUTH)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json() == {"message": "no Route matched with those values"}
    assert mock.requests() == []


def test_sub_paths_of_the_route_prefix_are_served(gw):
    r = gw.http.post("/chat/v1/chat/completions", json=chat(), headers=AUTH)
    assert r.status_code == 200, r.text


def test_errors_carry_the_request_id(gw):
    r = gw.http.post("/chat", json={"messages": []}, headers={**AUTH, "x-request-id": "trace-abc-123"})
    assert r.status_code == 400
    assert r.headers["x-request-id"] == "trace-abc-123"
    (line,) = gw.access_log(wait_for=1)
    assert line["request_id"] == "trace-abc-123"
    assert line["status"] == 400
    assert "'messages' must not be empty" in line["error"]
