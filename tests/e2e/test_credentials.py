"""Credential mediation: the provider sees the target's credential (header,
query or body), never the client's key, wherever the client put it."""

from conftest import chat
from configs import ALICE_KEY, PROVIDER_KEY, llm_config


def assert_no_client_key(seen: dict):
    flat = str(seen)
    assert ALICE_KEY not in flat, f"client key leaked to the provider: {seen}"
    assert "apikey" not in seen["headers"]
    assert "apikey" not in (seen["query"] or "")


def test_header_credential_reaches_the_provider(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, auth='header_name = "api-key", header_value = "azure-style-secret"'))
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY, "api-key": "client-tries-its-own"})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["headers"]["api-key"] == "azure-style-secret"
    assert "client-tries-its-own" not in str(seen)
    assert "authorization" not in seen["headers"]
    assert_no_client_key(seen)


def test_query_credential_is_added_to_the_provider_url(mock, gateway_factory):
    gw = gateway_factory(
        llm_config(mock, auth='param_name = "key", param_value = "q-secret", param_location = "query"')
    )
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["query"] == "key=q-secret"
    assert "authorization" not in seen["headers"]
    assert "key" not in seen["body"]
    assert_no_client_key(seen)


def test_query_credential_is_percent_encoded_and_keeps_the_urls_query(mock, gateway_factory):
    gw = gateway_factory(
        llm_config(
            mock,
            upstream_url=mock.chat_url + "?api-version=2024-10-21",
            auth='param_name = "key", param_value = "a b&c=d", param_location = "query"',
        )
    )
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["query"] == "api-version=2024-10-21&key=a%20b%26c%3Dd"


def test_body_credential_is_set_in_the_provider_body(mock, gateway_factory):
    gw = gateway_factory(
        llm_config(mock, auth='param_name = "api_key", param_value = "b-secret", param_location = "body"')
    )
    r = gw.http.post("/chat", json=chat(api_key="client-supplied"), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["body"]["api_key"] == "b-secret", "the target's credential wins over the client's field"
    assert seen["query"] is None
    assert "authorization" not in seen["headers"]
    assert_no_client_key(seen)


def test_client_key_in_query_never_reaches_the_provider(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    r = gw.http.post(f"/chat?apikey={ALICE_KEY}&trace=1", json=chat())
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert_no_client_key(seen)


def test_client_key_in_body_is_accepted_and_removed(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, key_auth="key_in_body = true"))
    r = gw.http.post("/chat", json=chat(apikey=ALICE_KEY))
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert "apikey" not in seen["body"]
    assert seen["body"]["messages"][-1]["content"] == "What is 1+1?"
    assert_no_client_key(seen)
    (line,) = gw.access_log(wait_for=1)
    assert line["consumer"] == "alice"


def test_body_key_is_ignored_unless_key_in_body(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    r = gw.http.post("/chat", json=chat(apikey=ALICE_KEY))
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "No API key found in request"
    assert mock.requests() == []


def test_key_locations_can_be_switched_off(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, key_auth="key_in_header = false"))
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 401, "a header key must not count with key_in_header = false"
    r = gw.http.post(f"/chat?apikey={ALICE_KEY}", json=chat())
    assert r.status_code == 200, r.text

    gw2 = gateway_factory(llm_config(mock, key_auth="key_in_query = false"), name="noquery")
    r = gw2.http.post(f"/chat?apikey={ALICE_KEY}", json=chat())
    assert r.status_code == 401, "a query key must not count with key_in_query = false"
    r = gw2.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text


def test_any_of_several_key_names(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, key_auth='key_names = ["apikey", "x-api-key"]'))
    r = gw.http.post("/chat", json=chat(), headers={"X-API-Key": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert "x-api-key" not in seen["headers"]
    assert_no_client_key(seen)


def test_provider_key_from_a_vault_reference(mock, gateway_factory):
    secret = "sk-from-the-environment-123"
    gw = gateway_factory(
        llm_config(mock, auth='header_name = "Authorization", header_value = "Bearer {vault://env/e2e-provider-key}"'),
        env={"E2E_PROVIDER_KEY": secret},
    )
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    (seen,) = mock.requests()
    assert seen["headers"]["authorization"] == f"Bearer {secret}"
    gw.access_log(wait_for=1)
    assert secret not in gw.log_path.read_text()
    assert secret not in gw.stderr()


def test_request_id_is_passed_to_the_provider(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY, "x-request-id": "req-42"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "req-42"
    (seen,) = mock.requests()
    assert seen["headers"]["x-request-id"] == "req-42"
    # Without one, the gateway makes one up and uses it on both sides.
    mock.reset()
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    (seen,) = mock.requests()
    assert r.headers["x-request-id"] and seen["headers"]["x-request-id"] == r.headers["x-request-id"]


def test_a_w3c_trace_context_is_passed_to_the_provider(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = {"apikey": ALICE_KEY, "traceparent": parent, "tracestate": "vendor=x"}
    assert gw.http.post("/chat", json=chat(), headers=headers).status_code == 200
    (seen,) = mock.requests()
    assert seen["headers"]["traceparent"] == parent
    assert seen["headers"]["tracestate"] == "vendor=x"
    # A malformed one is not passed on (it could be anything a caller made up).
    mock.reset()
    bad = {"apikey": ALICE_KEY, "traceparent": "00-zz-00-01"}
    assert gw.http.post("/chat", json=chat(), headers=bad).status_code == 200
    (seen,) = mock.requests()
    assert "traceparent" not in seen["headers"]
