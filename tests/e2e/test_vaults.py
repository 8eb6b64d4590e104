"""Kong's `[[vaults]]` entities: the seed's `{vault://ai/openai-token}` through an
`env` vault with a prefix, and HashiCorp Vault (KV v1 and v2, token, AppRole and
Kubernetes logins, namespaces) through a loopback fake of its HTTP API
(fixtures/fake_vault.py): a rotated secret reaches the provider after its ttl with
no reload, and a vault outage keeps the last good value and shows on /status and
/metrics."""

import json
import os
import re
import signal
import subprocess

import pytest

from configs import poll
from conftest import bin_dir, chat
from fixtures.fake_azure_key_vault import FakeAzureKeyVault
from fixtures.fake_gcp_secret_manager import FakeGcpSecretManager
from fixtures.fake_secrets_manager import FakeSecretsManager
from fixtures.fake_vault import FakeVault

CLIENT_KEY = "vault-client-key"


def config(mock, header_value: str, vaults: str) -> str:
    return f"""
{vaults}

[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{CLIENT_KEY}" }}]

[[plugins]]
name = "key-auth"

[[plugins]]
name = "ai-proxy"
service = "llm"
[plugins.config]
route_type = "llm/v1/chat"
auth = {{ header_name = "Authorization", header_value = "{header_value}" }}
model = {{ provider = "openai", name = "gpt-4o", options = {{ upstream_url = "{mock.chat_url}" }} }}
"""


def hcv_vault(fake: FakeVault, **config) -> str:
    lines = [f'host = "127.0.0.1"', f"port = {fake.port}"]
    for k, v in config.items():
        lines.append(f"{k} = {v}" if isinstance(v, int) else f'{k} = "{v}"')
    return '[[vaults]]\nname = "hcv"\nprefix = "ai"\ndescription = "HashiCorp Vault"\n[vaults.config]\n' + "\n".join(lines)


def provider_keys(mock) -> list[str]:
    return [r["headers"]["authorization"] for r in mock.requests()]


def ask(gw):
    return gw.http.post("/chat", json=chat(), headers={"apikey": CLIENT_KEY})


@pytest.fixture
def fake_vault():
    v = FakeVault(namespace="team-ai")
    v.mount("secret", 2)
    v.mount("kv1", 1)
    yield v
    v.stop()


def test_the_seed_line_reads_a_prefixed_environment_variable(mock, gateway_factory):
    vaults = '[[vaults]]\nname = "env"\nprefix = "ai"\nconfig.prefix = "AI_"'
    gw = gateway_factory(
        config(mock, "Bearer {vault://ai/openai-token}", vaults),
        env={"AI_OPENAI_TOKEN": "sk-from-ai-prefix", "OPENAI_TOKEN": "sk-unprefixed"},
    )
    r = ask(gw)
    assert r.status_code == 200, r.text
    assert provider_keys(mock) == ["Bearer sk-from-ai-prefix"]


def test_a_rotated_kv2_secret_is_used_after_its_ttl_without_a_reload(mock, gateway_factory, fake_vault):
    token = fake_vault.add_token()
    fake_vault.put("secret", "llm/openai", {"token": "sk-version-1", "org": "o"})
    vaults = hcv_vault(fake_vault, kv="v2", mount="secret", namespace="team-ai", token=token, ttl=1)
    gw = gateway_factory(config(mock, "Bearer {vault://ai/llm/openai/token}", vaults))
    assert ask(gw).status_code == 200
    (read,) = fake_vault.reads()
    assert read["path"] == "/v1/secret/data/llm/openai"
    assert read["headers"]["x-vault-token"] == token
    assert read["headers"]["x-vault-namespace"] == "team-ai"

    fake_vault.put("secret", "llm/openai", {"token": "sk-version-2", "org": "o"})

    def rotated():
        mock.reset()
        assert ask(gw).status_code == 200
        return provider_keys(mock) == ["Bearer sk-version-2"]

    assert poll(rotated, timeout=8, interval=0.2), provider_keys(mock)
    status = gw.http.get(f"{gw.admin_url}/status").json()
    assert status["reload"]["last_reload_ok"] is True
    assert "vault refresh" in gw.stderr(), "the swap came from the refresh, not a reload"
    assert "sk-version" not in gw.stderr()
    (ai,) = status["vaults"]
    assert (ai["prefix"], ai["name"], ai["errors_total"], ai["failing"]) == ("ai", "hcv", 0, False)
    assert ai["last_refresh_at_unix"] > 0


def test_a_vault_outage_keeps_the_last_good_value_and_is_reported(mock, gateway_factory, fake_vault):
    token = fake_vault.add_token()
    fake_vault.put("secret", "llm/openai", {"token": "sk-last-good"})
    vaults = hcv_vault(fake_vault, kv="v2", namespace="team-ai", token=token, ttl=1, neg_ttl=1)
    gw = gateway_factory(config(mock, "Bearer {vault://ai/llm/openai/token}", vaults))
    assert ask(gw).status_code == 200
    fake_vault.stop()

    def failing():
        (ai,) = gw.http.get(f"{gw.admin_url}/status").json()["vaults"]
        return ai if ai["errors_total"] >= 1 else None

    ai = poll(failing, timeout=8, interval=0.2)
    assert ai, "the failed refresh shows on /status"
    assert ai["failing"] is True
    assert ai["serving_last_good_value"] == ["llm/openai"]
    assert "could not be reached" in ai["last_error"]
    mock.reset()
    for _ in range(3):
        assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-last-good"] * 3
    errors = re.search(r'^tollgate_vault_errors_total\{vault="ai",name="hcv"\} (\d+)$', gw.metrics(), re.M)
    assert errors and int(errors.group(1)) >= 1
    assert re.search(r'^tollgate_vault_last_refresh_timestamp_seconds\{vault="ai",name="hcv"\} \d+$', gw.metrics(), re.M)
    assert "vault refresh failed" in gw.stderr()
    assert "sk-last-good" not in gw.stderr() and token not in gw.stderr()


def test_approle_login_reads_kv1_with_the_token_it_gets(mock, gateway_factory, fake_vault, tmp_path):
    fake_vault.approles["gateway-role"] = "s3cret-id"
    fake_vault.put("kv1", "openai", {"token": "sk-approle"})
    secret_file = tmp_path / "secret-id"
    secret_file.write_text("s3cret-id\n")
    vaults = hcv_vault(
        fake_vault,
        kv="v1",
        mount="kv1",
        namespace="team-ai",
        auth_method="approle",
        approle_role_id="gateway-role",
        approle_secret_id_file=str(secret_file),
    )
    gw = gateway_factory(config(mock, "Bearer {vault://ai/openai/token}", vaults))
    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-approle"]
    login, read = fake_vault.requests
    assert (login["method"], login["path"]) == ("POST", "/v1/auth/approle/login")
    assert login["body"] == {"role_id": "gateway-role", "secret_id": "s3cret-id"}
    assert read["path"] == "/v1/kv1/openai"
    assert read["headers"]["x-vault-token"] in fake_vault.tokens


def test_a_response_wrapped_secret_id_is_unwrapped_first(mock, gateway_factory, fake_vault):
    fake_vault.approles["gateway-role"] = "real-secret-id"
    wrapping = fake_vault.wrap_secret_id("real-secret-id")
    fake_vault.put("secret", "openai", {"token": "sk-wrapped"})
    vaults = hcv_vault(
        fake_vault,
        kv="v2",
        namespace="team-ai",
        auth_method="approle",
        approle_role_id="gateway-role",
        approle_secret_id=wrapping,
        approle_response_wrapping="true",
    ).replace('approle_response_wrapping = "true"', "approle_response_wrapping = true")
    gw = gateway_factory(config(mock, "Bearer {vault://ai/openai/token}", vaults))
    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-wrapped"]
    assert [r["path"] for r in fake_vault.requests][:2] == ["/v1/sys/wrapping/unwrap", "/v1/auth/approle/login"]


def test_a_wrapped_secret_id_is_unwrapped_once_and_used_for_every_later_login(mock, gateway_factory, fake_vault):
    fake_vault.approles["gateway-role"] = "real-secret-id"
    # 31 s: the gateway logs in again 30 s before a lease ends, so at every refresh.
    fake_vault.lease_duration = 31
    wrapping = fake_vault.wrap_secret_id("real-secret-id")
    fake_vault.put("secret", "openai", {"token": "sk-first"})
    vaults = hcv_vault(
        fake_vault,
        kv="v2",
        namespace="team-ai",
        auth_method="approle",
        approle_role_id="gateway-role",
        approle_secret_id=wrapping,
        ttl=1,
    ) + "\napprole_response_wrapping = true"
    gw = gateway_factory(config(mock, "Bearer {vault://ai/openai/token}", vaults))
    assert ask(gw).status_code == 200
    fake_vault.put("secret", "openai", {"token": "sk-rotated"})

    def rotated():
        mock.reset()
        assert ask(gw).status_code == 200
        return provider_keys(mock) == ["Bearer sk-rotated"]

    assert poll(rotated, timeout=8, interval=0.2), provider_keys(mock)
    paths = [r["path"] for r in fake_vault.requests]
    assert paths.count("/v1/sys/wrapping/unwrap") == 1, paths
    logins = [r for r in fake_vault.requests if r["path"] == "/v1/auth/approle/login"]
    assert len(logins) >= 2 and all(r["body"]["secret_id"] == "real-secret-id" for r in logins)
    assert "real-secret-id" not in gw.stderr() and wrapping not in gw.stderr()


def test_kubernetes_login_sends_the_service_account_jwt(mock, gateway_factory, fake_vault, tmp_path):
    fake_vault.kube_roles["tollgate"] = "eyJhbGciOiJSUzI1NiJ9.sa.sig"
    fake_vault.auth_paths["kubernetes"] = "k8s-prod"
    fake_vault.put("secret", "openai", {"token": "sk-kube"})
    jwt_file = tmp_path / "token"
    jwt_file.write_text("eyJhbGciOiJSUzI1NiJ9.sa.sig")
    vaults = hcv_vault(
        fake_vault,
        kv="v2",
        namespace="team-ai",
        auth_method="kubernetes",
        kube_role="tollgate",
        kube_auth_path="k8s-prod",
        kube_api_token_file=str(jwt_file),
    )
    gw = gateway_factory(config(mock, "Bearer {vault://ai/openai/token}", vaults))
    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-kube"]
    login = fake_vault.requests[0]
    assert login["path"] == "/v1/auth/k8s-prod/login"
    assert login["body"] == {"role": "tollgate", "jwt": "eyJhbGciOiJSUzI1NiJ9.sa.sig"}


def check(path):
    return subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(path)], capture_output=True, text=True, timeout=30)


def test_bad_vaults_are_refused_at_load_with_the_field_named(mock, tmp_path, fake_vault):
    token = fake_vault.add_token()
    path = tmp_path / "bad.toml"
    cases = [
        ('[[vaults]]\nname = "azure"\nprefix = "ai"', "vaults[0].config", "missing field `vault_uri`"),
        ('[[vaults]]\nname = "env"\nprefix = "env"', "vaults[0].prefix", "reserved"),
        (hcv_vault(fake_vault, auth_method="approle"), "vaults[0].config.approle_role_id", "required"),
        (hcv_vault(fake_vault, kv="v2", namespace="team-ai", token=token), "plugins[1].config.auth.header_value", "secret not found"),
        (hcv_vault(fake_vault, kv="v2", token=token), "plugins[1].config.auth.header_value", "permission denied"),
    ]
    for vaults, field, message in cases:
        path.write_text(config(mock, "Bearer {vault://ai/llm/missing/token}", vaults))
        out = check(path)
        assert out.returncode == 1, out.stdout
        assert field in out.stderr and message in out.stderr, out.stderr
        assert token not in out.stderr


def test_a_reload_fetches_anew_and_survives_a_vault_outage(mock, gateway_factory, fake_vault):
    token = fake_vault.add_token()
    fake_vault.put("secret", "llm/openai", {"token": "sk-before-reload"})
    # ttl 0: never refreshed in the background; a reload is what picks a rotation up.
    vaults = hcv_vault(fake_vault, kv="v2", namespace="team-ai", token=token)
    gw = gateway_factory(config(mock, "Bearer {vault://ai/llm/openai/token}", vaults))
    fake_vault.put("secret", "llm/openai", {"token": "sk-after-reload"})

    def reload_and_ask():
        gw.proc.send_signal(signal.SIGHUP)
        assert poll(lambda: "config reloaded" in gw.stderr(), timeout=8), gw.stderr()
        mock.reset()
        assert ask(gw).status_code == 200

    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-before-reload"], "no refresh with ttl 0"
    reload_and_ask()
    assert provider_keys(mock) == ["Bearer sk-after-reload"]
    fake_vault.stop()
    gw.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: gw.stderr().count("config reloaded") == 2, timeout=8), gw.stderr()
    assert "using the last good value" in gw.stderr()
    status = gw.http.get(f"{gw.admin_url}/status").json()
    assert status["reload"]["last_reload_ok"] is True, status["reload"]
    assert status["vaults"][0]["serving_last_good_value"] == ["llm/openai"]
    mock.reset()
    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-after-reload"]


AWS_ENV = {"AWS_ACCESS_KEY_ID": "AKIDVAULTTEST", "AWS_SECRET_ACCESS_KEY": "aws-vault-secret-key", "AWS_REGION": "eu-west-1"}


@pytest.fixture
def secrets_manager():
    s = FakeSecretsManager(AWS_ENV["AWS_ACCESS_KEY_ID"], AWS_ENV["AWS_SECRET_ACCESS_KEY"], "eu-west-1")
    yield s
    s.stop()


def aws_vault(sm: FakeSecretsManager, ttl: int = 0) -> str:
    return f'[[vaults]]\nname = "aws"\nprefix = "ai"\n[vaults.config]\nendpoint_url = "{sm.url}"\nttl = {ttl}'


def test_aws_secrets_are_read_signed_and_refreshed(mock, gateway_factory, secrets_manager):
    secrets_manager.put("llm/openai", '{"token": "sk-aws-1"}')
    gw = gateway_factory(config(mock, "Bearer {vault://ai/llm/openai/token}", aws_vault(secrets_manager, ttl=1)), env=AWS_ENV)
    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-aws-1"]
    first = secrets_manager.requests[0]
    assert first["headers"]["x-amz-target"] == "secretsmanager.GetSecretValue"
    assert "/eu-west-1/secretsmanager/aws4_request" in first["headers"]["authorization"]
    secrets_manager.put("llm/openai", '{"token": "sk-aws-2"}')

    def rotated():
        mock.reset()
        assert ask(gw).status_code == 200
        return provider_keys(mock) == ["Bearer sk-aws-2"]

    assert poll(rotated, timeout=8, interval=0.2), provider_keys(mock)
    assert "aws-vault-secret-key" not in gw.stderr() and "sk-aws" not in gw.stderr()


def test_aws_version_two_reads_the_previous_stage(mock, gateway_factory, secrets_manager):
    secrets_manager.put("openai-token", "sk-old")
    secrets_manager.put("openai-token", "sk-new")
    gw = gateway_factory(config(mock, "{vault://ai/openai-token?version=2}", aws_vault(secrets_manager)), env=AWS_ENV)
    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["sk-old"]
    assert b'"VersionStage":"AWSPREVIOUS"' in secrets_manager.requests[0]["body"]


def test_a_wrong_aws_key_is_refused_by_the_signature_check(mock, tmp_path, secrets_manager):
    secrets_manager.put("openai-token", "sk-x")
    path = tmp_path / "aws.toml"
    path.write_text(config(mock, "{vault://ai/openai-token}", aws_vault(secrets_manager)))
    env = {**os.environ, **AWS_ENV, "AWS_SECRET_ACCESS_KEY": "not-the-key"}
    out = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(path)], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 1
    assert "InvalidSignatureException: signature does not match" in out.stderr, out.stderr
    assert "not-the-key" not in out.stderr
    env["AWS_SECRET_ACCESS_KEY"] = AWS_ENV["AWS_SECRET_ACCESS_KEY"]
    ok = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(path)], capture_output=True, text=True, timeout=30, env=env)
    assert ok.returncode == 0, ok.stderr


def test_gcp_secrets_are_read_with_a_service_account_token_and_refreshed(mock, gateway_factory, tmp_path):
    email = "tollgate@proj-1.iam.gserviceaccount.com"
    gcp = FakeGcpSecretManager("proj-1", email)
    try:
        key = tmp_path / "key.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)], check=True, capture_output=True)
        account = {"type": "service_account", "project_id": "proj-1", "private_key_id": "kid-1", "private_key": key.read_text(), "client_email": email, "token_uri": gcp.token_uri}
        gcp.add_version("openai", '{"token": "sk-gcp-1"}')
        vaults = f'[[vaults]]\nname = "gcp"\nprefix = "ai"\n[vaults.config]\nproject_id = "proj-1"\nendpoint_url = "{gcp.url}"\nttl = 1'
        gw = gateway_factory(config(mock, "Bearer {vault://ai/openai/token}", vaults), env={"GCP_SERVICE_ACCOUNT": json.dumps(account)})
        assert ask(gw).status_code == 200
        assert provider_keys(mock) == ["Bearer sk-gcp-1"]
        assert [r["path"] for r in gcp.requests[:2]] == ["/token", "/v1/projects/proj-1/secrets/openai/versions/latest:access"]
        gcp.add_version("openai", '{"token": "sk-gcp-2"}')

        def rotated():
            mock.reset()
            assert ask(gw).status_code == 200
            return provider_keys(mock) == ["Bearer sk-gcp-2"]

        assert poll(rotated, timeout=8, interval=0.2), provider_keys(mock)
        assert len([r for r in gcp.requests if r["path"] == "/token"]) == 1, "the token is reused"
        assert "PRIVATE KEY" not in gw.stderr() and "ya29." not in gw.stderr() and "sk-gcp" not in gw.stderr()
    finally:
        gcp.stop()


def test_azure_secrets_are_read_with_a_client_credentials_token_and_refreshed(mock, gateway_factory):
    kv = FakeAzureKeyVault("tenant-1", "client-1", "azure-client-secret")
    try:
        kv.set_secret("openai-token", "sk-azure-1")
        vaults = f'[[vaults]]\nname = "azure"\nprefix = "ai"\n[vaults.config]\nvault_uri = "{kv.url}"\ntenant_id = "tenant-1"\nttl = 1'
        env = {"AZURE_CLIENT_ID": "client-1", "AZURE_CLIENT_SECRET": "azure-client-secret", "AZURE_AUTHORITY_HOST": kv.url}
        gw = gateway_factory(config(mock, "Bearer {vault://ai/openai-token}", vaults), env=env)
        assert ask(gw).status_code == 200
        assert provider_keys(mock) == ["Bearer sk-azure-1"]
        login, read = kv.requests[:2]
        assert login["path"] == "/tenant-1/oauth2/v2.0/token" and login["form"]["client_id"] == "client-1"
        assert read["path"] == "/secrets/openai-token" and read["query"] == "api-version=7.4"
        kv.set_secret("openai-token", "sk-azure-2")

        def rotated():
            mock.reset()
            assert ask(gw).status_code == 200
            return provider_keys(mock) == ["Bearer sk-azure-2"]

        assert poll(rotated, timeout=8, interval=0.2), provider_keys(mock)
        assert len([r for r in kv.requests if r["method"] == "POST"]) == 1, "the token is reused"
        assert "azure-client-secret" not in gw.stderr() and "sk-azure" not in gw.stderr()
    finally:
        kv.stop()


def test_a_rotation_whose_rebuild_failed_is_installed_once_a_rebuild_succeeds(
    mock, gateway_factory, fake_vault, tmp_path
):
    token = fake_vault.add_token()
    fake_vault.put("secret", "llm/openai", {"token": "sk-before"})
    (tmp_path / "bob-key").write_text("bob-client-key\n")
    vaults = hcv_vault(fake_vault, kv="v2", namespace="team-ai", token=token, ttl=1)
    bob = '\n[[consumers]]\nusername = "bob"\nkeyauth_credentials = [{ key = "{vault://file/bob-key}" }]\n'
    gw = gateway_factory(config(mock, "Bearer {vault://ai/llm/openai/token}", vaults) + bob)
    assert ask(gw).status_code == 200

    # The secret rotates while the rebuild cannot succeed (a file it reads is gone).
    (tmp_path / "bob-key").unlink()
    fake_vault.put("secret", "llm/openai", {"token": "sk-after"})

    def rebuild_failed():
        return gw.http.get(f"{gw.admin_url}/status").json()["reload"]["last_reload_ok"] is False

    assert poll(rebuild_failed, timeout=8, interval=0.2), "the rebuild fails without the file"
    mock.reset()
    assert ask(gw).status_code == 200
    assert provider_keys(mock) == ["Bearer sk-before"], "the running config stays"

    (tmp_path / "bob-key").write_text("bob-client-key\n")

    def rotated():
        mock.reset()
        assert ask(gw).status_code == 200
        return provider_keys(mock) == ["Bearer sk-after"]

    assert poll(rotated, timeout=8, interval=0.2), provider_keys(mock)
    assert gw.http.get(f"{gw.admin_url}/status").json()["reload"]["last_reload_ok"] is True
