"""Gemini on Vertex AI with a service account: tollgate signs a JWT with the
account's key, trades it at the account's token_uri for an OAuth token,
caches it, and sends it as the Bearer credential of each Vertex call."""

import json
import subprocess

from openai import OpenAI

from configs import ALICE_KEY, llm_config

MESSAGES = [{"role": "user", "content": "What is 1+1?"}]


def service_account(tmp_path, token_uri: str) -> str:
    key = tmp_path / "key.pem"
    # A throwaway key for this test (PKCS#8, as Google issues them).
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
        check=True, capture_output=True,
    )
    account = {
        "type": "service_account",
        "project_id": "proj-1",
        "private_key_id": "kid-1",
        "private_key": key.read_text(),
        "client_email": "tollgate@proj-1.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account))
    return str(path)


def test_vertex_calls_carry_a_cached_service_account_token(mock, gateway_factory, tmp_path):
    sa = service_account(tmp_path, f"{mock.url}/oauth2/token")
    cfg = llm_config(
        mock,
        path="/openai",
        provider="gemini",
        model_name="gemini-2.0-flash",
        auth=f'gcp_service_account_json = "{{vault://file/{sa}}}"',
        upstream_url=mock.url,
        options='gemini = { api_endpoint = "us-central1-aiplatform.googleapis.com", project_id = "proj-1", location_id = "us-central1" }',
    )
    gw = gateway_factory(cfg)
    client = OpenAI(base_url=gw.url + "/openai", api_key="unused", default_headers={"apikey": ALICE_KEY}, max_retries=0)
    for _ in range(3):
        resp = client.chat.completions.create(model="gemini-2.0-flash", messages=MESSAGES)
        assert resp.choices[0].message.content.startswith("mock reply to:")
    seen = mock.requests()
    tokens = [r for r in seen if r["path"] == "/oauth2/token"]
    calls = [r for r in seen if r["path"] != "/oauth2/token"]
    assert len(tokens) == 1, "the token is fetched once and cached"
    assert tokens[0]["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert len(calls) == 3
    for c in calls:
        assert c["path"] == "/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent"
        assert c["headers"]["authorization"].startswith("Bearer ya29.mock-")
    assert len({c["headers"]["authorization"] for c in calls}) == 1
    # Neither the key nor the token shows in the access log.
    log = gw.log_path.read_text()
    assert "PRIVATE KEY" not in log and "ya29." not in log
    client.close()


def test_a_token_endpoint_refusal_is_a_502_naming_the_provider(mock, gateway_factory, tmp_path):
    sa = service_account(tmp_path, "http://127.0.0.1:9/token")  # nothing listens
    cfg = llm_config(
        mock,
        provider="gemini",
        model_name="gemini-2.0-flash",
        auth=f'gcp_service_account_json = "{{vault://file/{sa}}}"',
        upstream_url=mock.url,
        options='gemini = { api_endpoint = "x-aiplatform.googleapis.com", project_id = "p", location_id = "l" }',
    )
    gw = gateway_factory(cfg)
    r = gw.http.post("/chat", json={"messages": MESSAGES}, headers={"apikey": ALICE_KEY})
    assert r.status_code == 502
    err = r.json()["error"]
    assert "gemini" in err["message"] and "authenticated" in err["message"]
    assert "PRIVATE KEY" not in r.text
    assert mock.requests() == []
