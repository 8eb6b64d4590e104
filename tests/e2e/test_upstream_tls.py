"""TLS towards upstreams: an https service is verified against the system
roots or the service's `ca_certificates`, `tls_verify = false` turns that
off, and `client_certificate` answers an upstream that asks for one (mTLS)."""

import ssl

import pytest

from configs import ALICE_KEY, llm_config
from conftest import JsonServer
from test_tls import Pki, openssl


def https_upstream(cert, key, client_ca=None) -> JsonServer:
    """An HTTPS server on 127.0.0.1 answering with the client certificate's
    common name; with `client_ca` it demands a client certificate signed by it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(client_ca))

    def answer(handler):
        peer = handler.connection.getpeercert()
        return {"client": dict(x[0] for x in peer["subject"])["commonName"] if peer else None}

    return JsonServer(answer, ctx)


def client_cert(pki: Pki, name: str):
    ext = pki.dir / f"{name}.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    openssl(pki.dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr")
    openssl(pki.dir, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt")
    return pki.dir / f"{name}.crt", pki.dir / f"{name}.key"


def config(url: str, service_tls: str) -> str:
    return f"""
[[services]]
name = "secure"
url = "{url}"
{service_tls}

[[routes]]
name = "secure"
service = "secure"
paths = ["/secure"]

[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{ALICE_KEY}" }}]

[[plugins]]
name = "key-auth"
"""


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path / "pki")


def test_verified_against_the_services_ca_and_mutual_tls(pki, gateway_factory):
    cert, key = pki.issue("upstream", ip="127.0.0.1")
    ccert, ckey = client_cert(pki, "tollgate-client")
    up = https_upstream(cert, key, client_ca=pki.ca)
    try:
        auth = {"apikey": ALICE_KEY}
        # Both: the server is trusted and tollgate presents its certificate.
        full = f'ca_certificates = ["{pki.ca}"]\nclient_certificate = {{ cert = "{ccert}", key = "{ckey}" }}'
        gw = gateway_factory(config(up.url, full), name="full")
        r = gw.http.get("/secure", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json() == {"client": "tollgate-client"}

        # The system roots do not know this CA: refused, never sent in clear.
        gw = gateway_factory(config(up.url, f'client_certificate = {{ cert = "{ccert}", key = "{ckey}" }}'), name="roots")
        assert gw.http.get("/secure", headers=auth).status_code == 502

        # Trusted, but without a client certificate the upstream refuses the handshake.
        gw = gateway_factory(config(up.url, f'ca_certificates = ["{pki.ca}"]'), name="no-client")
        assert gw.http.get("/secure", headers=auth).status_code == 502

        # tls_verify = false: the upstream's certificate is not checked.
        off = f'tls_verify = false\nclient_certificate = {{ cert = "{ccert}", key = "{ckey}" }}'
        gw = gateway_factory(config(up.url, off), name="off")
        assert gw.http.get("/secure", headers=auth).status_code == 200
    finally:
        up.stop()


def test_llm_targets_connect_with_their_services_ca_and_client_certificate(pki, mock, gateway_factory):
    """An LLM service has no url, but its TLS fields apply to its targets, as
    Kong's service settings apply to ai-proxy's upstream."""
    cert, key = pki.issue("upstream", ip="127.0.0.1")
    ccert, ckey = client_cert(pki, "tollgate-llm-client")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(pki.ca))

    def answer(handler):
        peer = handler.connection.getpeercert()
        name = dict(x[0] for x in peer["subject"])["commonName"]
        return {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"hello {name}"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}

    up = JsonServer(answer, ctx)
    try:
        def gateway(service_tls: str, name: str):
            text = llm_config(mock, upstream_url=f"{up.url}/v1/chat/completions")
            text = text.replace('name = "llm"\n', f'name = "llm"\n{service_tls}\n', 1)
            return gateway_factory(text, name=name)

        body = {"messages": [{"role": "user", "content": "hi"}]}
        full = f'ca_certificates = ["{pki.ca}"]\nclient_certificate = {{ cert = "{ccert}", key = "{ckey}" }}'
        r = gateway(full, "full").http.post("/chat", json=body, headers={"apikey": ALICE_KEY})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "hello tollgate-llm-client"
        # Without the service's CA the provider is not trusted: nothing is sent.
        only_client = f'client_certificate = {{ cert = "{ccert}", key = "{ckey}" }}'
        assert gateway(only_client, "roots").http.post("/chat", json=body, headers={"apikey": ALICE_KEY}).status_code == 502
        # Trusted, but the provider wants a client certificate.
        no_client = f'ca_certificates = ["{pki.ca}"]'
        assert gateway(no_client, "no-client").http.post("/chat", json=body, headers={"apikey": ALICE_KEY}).status_code == 502
    finally:
        up.stop()


def test_unusable_certificate_files_are_config_errors(pki, tmp_path, gateway_factory):
    import subprocess
    from conftest import bin_dir

    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    path = tmp_path / "bad.toml"
    path.write_text(config("https://127.0.0.1:1", f'ca_certificates = ["{bad}"]'))
    r = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "service secure" in r.stderr and "ca_certificates[0]" in r.stderr, r.stderr
