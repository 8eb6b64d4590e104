"""No secret leaks anywhere a caller or an operator can read: every provider
key (header, AWS secret, service-account key), client key, Redis password and
vault value is grepped for in the access log, stderr, /metrics, /status and
every answer, after traffic that exercises successes, refusals, provider
errors, dead providers, a dead Redis and a bad reload."""

import signal
import subprocess

import httpx

from conftest import chat
from configs import closed_port_url, poll

CLIENT_KEY = "client-key-5e5c7e7"
OPENAI_KEY = "sk-openai-5e5c7e7"
ANTHROPIC_KEY = "sk-ant-5e5c7e7"
AWS_SECRET = "aws-secret-5e5c7e7"
REDIS_PASSWORD = "redis-pass-5e5c7e7"
VAULT_VALUE = "vault-value-5e5c7e7"
SECRETS = [CLIENT_KEY, OPENAI_KEY, ANTHROPIC_KEY, AWS_SECRET, REDIS_PASSWORD, VAULT_VALUE, "PRIVATE KEY"]


def config(mock, sa_path: str) -> str:
    return f"""
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[services]]
name = "vertex"

[[routes]]
name = "vertex"
service = "vertex"
paths = ["/vertex"]

[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{CLIENT_KEY}" }}]

[[plugins]]
name = "key-auth"

[[plugins]]
name = "ai-rate-limiting-advanced"
service = "llm"
[plugins.config]
strategy = "redis"
fault_tolerant = true
llm_providers = [{{ name = "*", window_size = [60], limit = [1000000] }}]
redis = {{ host = "127.0.0.1", port = 9, password = "{REDIS_PASSWORD}", timeout = 200 }}

[[plugins]]
name = "ai-proxy-advanced"
service = "llm"
[plugins.config.balancer]
failover_criteria = ["error", "http_500", "http_503"]
[[plugins.config.targets]]
auth = {{ header_name = "x-api-key", header_value = "{ANTHROPIC_KEY}" }}
model = {{ provider = "anthropic", name = "claude-3-5-haiku-20241022", options = {{ upstream_url = "{mock.url}/v1/messages" }} }}
[[plugins.config.targets]]
auth = {{ aws_access_key_id = "AKIDEXAMPLE", aws_secret_access_key = "{AWS_SECRET}" }}
model = {{ provider = "bedrock", name = "amazon.nova-micro-v1:0", options = {{ upstream_url = "{mock.url}", bedrock = {{ aws_region = "us-east-1" }} }} }}
[[plugins.config.targets]]
auth = {{ header_name = "Authorization", header_value = "Bearer {{vault://env/e2e-vault-secret}}" }}
model = {{ provider = "openai", name = "gpt-4o", options = {{ upstream_url = "{closed_port_url()}" }} }}

[[plugins]]
name = "ai-proxy"
service = "vertex"
[plugins.config]
auth = {{ gcp_service_account_json = "{{vault://file/{sa_path}}}" }}
[plugins.config.model]
provider = "gemini"
name = "gemini-2.0-flash"
options = {{ upstream_url = "{mock.url}", gemini = {{ api_endpoint = "x-aiplatform.googleapis.com", project_id = "p", location_id = "l" }} }}
"""


def service_account(tmp_path, token_uri: str) -> str:
    key = tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
        check=True, capture_output=True,
    )
    import json

    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account",
        "private_key": key.read_text(),
        "client_email": "sa@p.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }))
    return str(path)


def test_no_secret_appears_in_logs_metrics_status_or_answers(mock, gateway_factory, tmp_path):
    sa = service_account(tmp_path, "http://127.0.0.1:9/token")  # token endpoint down
    gw = gateway_factory(config(mock, sa), env={"E2E_VAULT_SECRET": VAULT_VALUE})
    seen = []

    def call(path="/chat", key=CLIENT_KEY, **kw):
        headers = {"apikey": key} if key else {}
        r = gw.http.post(path, json=kw.pop("body", chat()), headers=headers, **kw)
        seen.append(r.text + str(dict(r.headers)))
        return r

    assert call().status_code == 200  # Redis down: served, fault tolerant
    call(key=None)  # no key
    call(key=CLIENT_KEY + "x")  # a wrong key close to the real one
    call(body={"messages": "bad"})  # our 400
    mock.behave(status=503, times=2)  # anthropic then bedrock fail, openai is dead
    call()
    mock.behave(status=401, error_body='{"error":{"message":"invalid x-api-key"}}', times=1)
    call()
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": CLIENT_KEY}) as r:
        seen.append("".join(r.iter_text()))
    call("/vertex")  # service-account token exchange fails
    # A reload that fails, with the secrets still in the file.
    gw.config_path.write_text(gw.config_path.read_text() + "\nbroken = [\n")
    gw.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: 'tollgate_config_reloads_total{result="failure"} 1' in gw.metrics())

    seen.append(gw.metrics())
    seen.append(httpx.get(f"{gw.admin_url}/status").text)
    gw.access_log(wait_for=8)
    places = {
        "answers, metrics and /status": "\n".join(seen),
        "access log": gw.log_path.read_text(),
        "stderr": gw.stderr(),
    }
    for where, text in places.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into the {where}"
    # The grep is not vacuous: these places did record the traffic.
    assert "anthropic" in places["access log"] and "redis" in places["stderr"].lower()
