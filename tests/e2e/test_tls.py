"""TLS at the edge: HTTPS and HTTP/2 to clients, certificates by SNI, certificate
reloads, and h2c on plain listeners. Certificates are made at test time by a
throwaway CA (the `openssl` CLI, installed by scripts/setup.sh --test)."""

import signal
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from configs import ALICE_KEY, llm_config, poll, sse_events
from conftest import bin_dir, chat, free_port

MESSAGES = [{"role": "user", "content": "What is 1+1?"}]


def openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pki:
    """A CA and server certificates it signs, as PEM files in `dir`."""

    def __init__(self, dir: Path):
        self.dir = dir
        dir.mkdir(exist_ok=True)
        openssl(
            dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-days", "2", "-subj", "/CN=tollgate test CA", "-keyout", "ca.key", "-out", "ca.crt",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )
        self.ca = dir / "ca.crt"

    def issue(self, name: str, *dns: str, ip: str | None = None, rsa: bool = False) -> tuple[Path, Path]:
        """A server certificate `name.crt` (and key `name.key`) for `dns` names."""
        sans = ",".join([f"DNS:{d}" for d in dns] + ([f"IP:{ip}"] if ip else []))
        ext = self.dir / f"{name}.ext"
        ext.write_text(
            f"subjectAltName={sans}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        newkey = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        openssl(self.dir, "req", *newkey, "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")
        openssl(self.dir, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt")
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def der(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text())


def served_cert(port: int, server_name: str | None, pki: Pki) -> bytes:
    """The certificate a handshake to 127.0.0.1:port gets, with that SNI (or none).
    Verified against the CA, but not against the name: an unknown name gets the
    default certificate, which is the point of some of these checks."""
    ctx = pki.context()
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def tls_config(mock, tls_port: int, *, server_extra: str = "", entries: str | None = None) -> str:
    """An LLM route at /openai with a TLS listener; certificate paths are relative
    to the config file's folder (the certs/ folder beside it)."""
    if entries is None:
        entries = """
  { cert = "certs/default.crt", key = "certs/default.key" },
  { cert = "certs/api.crt", key = "certs/api.key", snis = ["api.test", "*.example.test"] },
"""
    server = f"""[server]
listen = ["127.0.0.1:@PORT@"]
admin_listen = "127.0.0.1:@ADMIN_PORT@"
tls_listen = ["127.0.0.1:{tls_port}"]
tls_certificates = [{entries}]
{server_extra}
"""
    return llm_config(mock, path="/openai", server=server)


@pytest.fixture
def pki(tmp_path) -> Pki:
    p = Pki(tmp_path / "certs")
    p.issue("default", "localhost", ip="127.0.0.1")
    p.issue("api", "api.test", "*.example.test", rsa=True)
    return p


@pytest.fixture
def tls_gateway(mock, pki, gateway_factory):
    port = free_port()
    gw = gateway_factory(tls_config(mock, port))
    gw.tls_port = port
    gw.tls_url = f"https://localhost:{port}"
    return gw


def reload_count(gw, result: str) -> int:
    for line in gw.metrics().splitlines():
        if line.startswith(f'tollgate_config_reloads_total{{result="{result}"}}'):
            return int(float(line.split()[-1]))
    return 0


def test_openai_sdk_over_https(tls_gateway, pki, mock):
    http = httpx.Client(verify=pki.context())
    client = OpenAI(
        base_url=tls_gateway.tls_url + "/openai", api_key="unused",
        default_headers={"apikey": ALICE_KEY}, max_retries=0, timeout=30, http_client=http,
    )
    resp = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert resp.choices[0].message.content == "mock reply to: What is 1+1?"
    assert len(mock.requests()) == 1
    client.close()
    # The plain listener keeps serving beside the TLS one.
    plain = tls_gateway.http.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert plain.status_code == 200


def test_http2_is_negotiated_and_streams(tls_gateway, pki, mock):
    mock.behave(chunks=5)
    with httpx.Client(http2=True, verify=pki.context(), base_url=tls_gateway.tls_url, timeout=30) as c:
        r = c.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
        assert r.status_code == 200, r.text
        assert r.http_version == "HTTP/2"
        assert r.json()["choices"][0]["message"]["content"]
        with c.stream("POST", "/openai/chat/completions", json=chat(stream=True),
                      headers={"apikey": ALICE_KEY}) as s:
            assert s.status_code == 200
            assert s.http_version == "HTTP/2"
            events = sse_events(s.iter_lines())
    assert events[-1] == "[DONE]"
    assert len(events) >= 6, events  # five content chunks, usage and [DONE] at most merged
    # HTTP/1.1-only clients still get served on the same TLS listener.
    with httpx.Client(verify=pki.context(), base_url=tls_gateway.tls_url, timeout=30) as c:
        r = c.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
        assert (r.status_code, r.http_version) == (200, "HTTP/1.1")


def test_sni_picks_the_certificate(tls_gateway, pki):
    default, api = der(pki.dir / "default.crt"), der(pki.dir / "api.crt")
    port = tls_gateway.tls_port
    assert served_cert(port, "api.test", pki) == api
    assert served_cert(port, "API.Test", pki) == api, "SNI is case-insensitive"
    assert served_cert(port, "eu.example.test", pki) == api, "wildcard, one label deep"
    assert served_cert(port, "a.b.example.test", pki) == default, "wildcards cover one label only"
    assert served_cert(port, "localhost", pki) == default
    assert served_cert(port, "unknown.test", pki) == default
    assert served_cert(port, None, pki) == default, "no SNI gets the default"
    # A client checking names accepts the certificate for the name it asked.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pki.context().wrap_socket(raw, server_hostname="api.test") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_sighup_swaps_certificates_and_rejects_a_broken_key(tls_gateway, pki, mock):
    port = tls_gateway.tls_port
    old = der(pki.dir / "default.crt")
    assert served_cert(port, None, pki) == old
    # Reissue the default certificate in place (a renewal), then SIGHUP.
    pki.issue("default", "localhost", ip="127.0.0.1")
    new = der(pki.dir / "default.crt")
    assert new != old
    tls_gateway.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: reload_count(tls_gateway, "success") == 1), tls_gateway.stderr()
    assert served_cert(port, None, pki) == new
    assert served_cert(port, "api.test", pki) == der(pki.dir / "api.crt")

    # A key that is not the certificate's: the whole reload is refused.
    (pki.dir / "default.key").write_bytes((pki.dir / "api.key").read_bytes())
    tls_gateway.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: reload_count(tls_gateway, "failure") == 1), tls_gateway.stderr()
    st = httpx.get(f"{tls_gateway.admin_url}/status", timeout=5).json()["reload"]
    assert st["last_reload_ok"] is False
    assert "server.tls_certificates[0].key" in st["last_reload_error"]
    assert "does not match the certificate" in st["last_reload_error"]
    assert served_cert(port, None, pki) == new, "the running certificate stays"
    # ... and so does everything else.
    with httpx.Client(verify=pki.context(), base_url=tls_gateway.tls_url, timeout=30) as c:
        assert c.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY}).status_code == 200

    # Garbage instead of a key is refused the same way.
    (pki.dir / "default.key").write_text("not a key\n")
    tls_gateway.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: reload_count(tls_gateway, "failure") == 2), tls_gateway.stderr()
    st = httpx.get(f"{tls_gateway.admin_url}/status", timeout=5).json()["reload"]
    assert "no private key in" in st["last_reload_error"]
    assert served_cert(port, None, pki) == new
    assert tls_gateway.proc.poll() is None


def test_watch_serves_renewed_certificate_files(mock, pki, gateway_factory):
    port = free_port()
    gw = gateway_factory(tls_config(mock, port, server_extra="watch = true"))
    old = der(pki.dir / "api.crt")
    assert served_cert(port, "api.test", pki) == old
    # A renewal (cert-manager rewriting a mounted Secret) with no signal sent.
    pki.issue("api", "api.test", "*.example.test", rsa=True)
    new = der(pki.dir / "api.crt")
    assert poll(lambda: served_cert(port, "api.test", pki) == new, timeout=5), gw.stderr()
    assert reload_count(gw, "success") == 1


def test_http2_off_offers_only_http1(mock, pki, gateway_factory):
    port = free_port()
    gw = gateway_factory(tls_config(mock, port, server_extra="http2 = false"))
    with httpx.Client(http2=True, verify=pki.context(), base_url=f"https://localhost:{port}", timeout=30) as c:
        r = c.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
        assert (r.status_code, r.http_version) == (200, "HTTP/1.1")


def test_h2c_with_prior_knowledge_on_plain_listeners(mock, gateway_factory):
    server = """[server]
listen = ["127.0.0.1:@PORT@"]
admin_listen = "127.0.0.1:@ADMIN_PORT@"
h2c = true
"""
    gw = gateway_factory(llm_config(mock, path="/openai", server=server))
    with httpx.Client(http1=False, http2=True, base_url=gw.url, timeout=30) as c:
        r = c.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
        assert (r.status_code, r.http_version) == (200, "HTTP/2"), r.text
        mock.behave(chunks=3)
        with c.stream("POST", "/openai/chat/completions", json=chat(stream=True),
                      headers={"apikey": ALICE_KEY}) as s:
            assert s.http_version == "HTTP/2"
            assert sse_events(s.iter_lines())[-1] == "[DONE]"
    # HTTP/1.1 on the same listener still works.
    r = gw.http.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert (r.status_code, r.http_version) == (200, "HTTP/1.1")


def test_h2c_is_off_by_default(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, path="/openai"))
    with httpx.Client(http1=False, http2=True, base_url=gw.url, timeout=5) as c:
        with pytest.raises(httpx.HTTPError):
            c.post("/openai/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})


def test_check_reports_certificate_problems(mock, pki, tmp_path):
    port = free_port()
    entries = """
  { cert = "certs/default.crt", key = "certs/missing.key" },
  { cert = "certs/api.key", key = "certs/api.key", snis = ["api.test"] },
"""
    text = tls_config(mock, port, entries=entries).replace("@PORT@", str(free_port())).replace(
        "@ADMIN_PORT@", str(free_port()))
    path = tmp_path / "bad-tls.toml"
    path.write_text(text)
    r = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2, r.stderr
    key_line = text.splitlines().index('  { cert = "certs/default.crt", key = "certs/missing.key" },') + 1
    assert lines[0].startswith(f"{path}:{key_line}:"), lines[0]
    assert "server.tls_certificates[0].key: cannot read key file" in lines[0]
    assert "server.tls_certificates[1].cert: no certificate in" in lines[1]
    # And a good one passes, counting its certificates.
    good = tmp_path / "good-tls.toml"
    good.write_text(tls_config(mock, port).replace("@PORT@", str(free_port())).replace(
        "@ADMIN_PORT@", str(free_port())))
    r = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(good)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "2 TLS certificates" in r.stdout
