"""Mutual TLS for callers: `server.client_ca` and `client_verify` on the TLS
listeners, and Kong's mtls-auth plugin naming the consumer from the verified
certificate (a subject alternative name, else the common name). Certificates come
from throwaway CAs made at test time with the `openssl` CLI."""

import json
import signal
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from configs import llm_config, poll
from conftest import bin_dir, chat, free_port
from test_tls import Pki, openssl, reload_count


def issue_client(pki: Pki, name: str, *, cn: str, sans: list[str] = ()) -> tuple[Path, Path]:
    """A client certificate `name.crt`/`name.key` signed by `pki`'s CA."""
    ext = pki.dir / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth"]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    openssl(pki.dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
    openssl(pki.dir, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.crt")
    return pki.dir / f"{name}.crt", pki.dir / f"{name}.key"


CONSUMERS = """
[[consumers]]
username = "alice"

[[consumers]]
custom_id = "build-bot"
"""

MTLS_AUTH = """
[[plugins]]
name = "mtls-auth"
service = "llm"
"""


def mtls_config(mock, tls_port: int, verify: str = "optional", plugin: str = MTLS_AUTH,
                consumers: str = CONSUMERS) -> str:
    server = f"""[server]
listen = ["127.0.0.1:@PORT@"]
admin_listen = "127.0.0.1:@ADMIN_PORT@"
tls_listen = ["127.0.0.1:{tls_port}"]
tls_certificates = [{{ cert = "certs/default.crt", key = "certs/default.key" }}]
client_ca = "certs/ca.crt"
client_verify = "{verify}"
"""
    return llm_config(mock, server=server, key_auth=None, consumers=consumers, extra=plugin)


@pytest.fixture
def pki(tmp_path) -> Pki:
    """The gateway's CA: it signs the server certificate and trusted callers'."""
    p = Pki(tmp_path / "certs")
    p.issue("default", "localhost", ip="127.0.0.1")
    issue_client(p, "alice", cn="alice")
    issue_client(p, "bot", cn="ci runner 7", sans=["DNS:build-bot"])
    issue_client(p, "stranger", cn="stranger")
    return p


@pytest.fixture
def rogue(tmp_path) -> Pki:
    """A CA the gateway does not trust, with a certificate named like alice."""
    p = Pki(tmp_path / "rogue")
    issue_client(p, "alice", cn="alice")
    return p


def client(pki: Pki, cert: tuple[Path, Path] | None) -> httpx.Client:
    ctx = pki.context()
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(verify=ctx, timeout=10)


def post(pki: Pki, port: int, cert) -> httpx.Response:
    with client(pki, cert) as c:
        return c.post(f"https://localhost:{port}/chat", json=chat())


def handshake_refused(pki: Pki, port: int, cert) -> bool:
    try:
        post(pki, port, cert)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError, ssl.SSLError):
        return True
    return False


def test_certificates_name_consumers_and_others_are_refused(mock, pki, rogue, gateway_factory):
    port = free_port()
    gw = gateway_factory(mtls_config(mock, port))
    cert = lambda name: (pki.dir / f"{name}.crt", pki.dir / f"{name}.key")

    assert post(pki, port, cert("alice")).status_code == 200
    assert post(pki, port, cert("bot")).status_code == 200  # SAN -> custom_id
    r = post(pki, port, None)
    assert r.status_code == 401 and "No required TLS certificate was sent" in r.text
    r = post(pki, port, cert("stranger"))
    assert r.status_code == 401 and "No consumer matches" in r.text
    # The plain listener has no certificate to offer.
    assert gw.http.post("/chat", json=chat()).status_code == 401
    # A certificate from another CA ends the handshake, whatever its name says.
    assert handshake_refused(pki, port, (rogue.dir / "alice.crt", rogue.dir / "alice.key"))
    assert len(mock.requests()) == 2, "only the two authenticated callers reach the provider"

    lines = gw.access_log(wait_for=5)
    assert [(l["consumer"], l["status"]) for l in lines] == [
        ("alice", 200), ("build-bot", 200), ("", 401), ("", 401), ("", 401)]


def raw_post(ctx: ssl.SSLContext, port: int, session=None) -> tuple[int, ssl.SSLSession, bool]:
    """One request on a fresh connection, optionally resuming `session`: the
    answer's status, the TLS session to resume next time, and whether this one
    was resumed (a resumed handshake carries no certificate)."""
    body = json.dumps(chat()).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(b"POST /chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            return int(answer.split(b" ", 2)[1]), tls.session, tls.session_reused


def test_a_resumed_session_is_checked_against_the_ca_in_force(mock, pki, rogue, gateway_factory):
    """A resumed TLS session brings back its first handshake's certificate
    unverified: after the CA is replaced, it must no longer name a consumer."""
    port = free_port()
    gw = gateway_factory(mtls_config(mock, port))
    ctx = pki.context()
    ctx.load_cert_chain(str(pki.dir / "alice.crt"), str(pki.dir / "alice.key"))
    status, session, _ = raw_post(ctx, port)
    assert status == 200
    status, session, reused = raw_post(ctx, port, session)
    assert reused and status == 200, "the same CA accepts a resumed session's certificate"

    (pki.dir / "clients-ca.crt").write_text(rogue.ca.read_text())
    gw.config_path.write_text(gw.config_path.read_text().replace("certs/ca.crt", "certs/clients-ca.crt"))
    gw.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: reload_count(gw, "success") == 1)
    status, _, reused = raw_post(ctx, port, session)
    assert reused and status == 401


def test_key_auth_with_anonymous_accepts_a_caller_the_certificate_named(mock, pki, gateway_factory):
    """Kong's logical OR: with key-auth's `anonymous` set, a certificate alone
    authenticates; without a certificate, a key or the anonymous consumer."""
    port = free_port()
    key_auth = """
[[plugins]]
name = "key-auth"
service = "llm"
[plugins.config]
anonymous = "guest"
"""
    consumers = CONSUMERS + """
[[consumers]]
username = "guest"

[[consumers]]
username = "carol"
keyauth_credentials = [{ key = "carol-key" }]
"""
    mtls_auth = MTLS_AUTH + '[plugins.config]\nanonymous = "guest"\n'
    gw = gateway_factory(mtls_config(mock, port, plugin=mtls_auth + key_auth, consumers=consumers))
    assert post(pki, port, (pki.dir / "alice.crt", pki.dir / "alice.key")).status_code == 200
    with client(pki, None) as c:
        assert c.post(f"https://localhost:{port}/chat", json=chat(), headers={"apikey": "carol-key"}).status_code == 200
        assert c.post(f"https://localhost:{port}/chat", json=chat()).status_code == 200
    assert [l["consumer"] for l in gw.access_log(wait_for=3)] == ["alice", "carol", "guest"]


def test_required_verification_ends_handshakes_without_a_certificate(mock, pki, gateway_factory):
    port = free_port()
    # No mtls-auth: with `required`, the listener alone keeps strangers out.
    gateway_factory(mtls_config(mock, port, verify="required", plugin=""))
    assert handshake_refused(pki, port, None)
    assert post(pki, port, (pki.dir / "alice.crt", pki.dir / "alice.key")).status_code == 200


def test_sighup_replaces_the_client_ca(mock, pki, rogue, gateway_factory):
    port = free_port()
    gw = gateway_factory(mtls_config(mock, port))
    alice = (pki.dir / "alice.crt", pki.dir / "alice.key")
    rogue_alice = (rogue.dir / "alice.crt", rogue.dir / "alice.key")
    assert post(pki, port, alice).status_code == 200
    assert handshake_refused(pki, port, rogue_alice)

    # The other CA becomes the trusted one.
    (pki.dir / "clients-ca.crt").write_text(rogue.ca.read_text())
    gw.config_path.write_text(gw.config_path.read_text().replace("certs/ca.crt", "certs/clients-ca.crt"))
    gw.proc.send_signal(signal.SIGHUP)
    assert poll(lambda: reload_count(gw, "success") == 1)
    assert post(pki, port, rogue_alice).status_code == 200
    assert handshake_refused(pki, port, alice)


def test_check_reports_client_ca_problems(mock, pki, tmp_path):
    def check(text: str) -> subprocess.CompletedProcess:
        path = tmp_path / "mtls.toml"
        path.write_text(text.replace("@PORT@", str(free_port())).replace("@ADMIN_PORT@", str(free_port())))
        return subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(path)],
                              capture_output=True, text=True)

    r = check(mtls_config(mock, free_port()).replace("certs/ca.crt", "certs/missing-ca.crt"))
    assert r.returncode == 1 and "server.client_ca" in r.stderr and "missing-ca.crt" in r.stderr, r.stderr
    no_ca = "\n".join(l for l in mtls_config(mock, free_port()).splitlines() if not l.startswith("client_"))
    r = check(no_ca)
    assert r.returncode == 1 and "mtls-auth needs server.client_ca" in r.stderr, r.stderr
    r = check(mtls_config(mock, free_port(), plugin=MTLS_AUTH + '[plugins.config]\nconsumer_by = ["email"]\n'))
    assert r.returncode == 1 and "consumer_by" in r.stderr, r.stderr
    assert check(mtls_config(mock, free_port())).returncode == 0
