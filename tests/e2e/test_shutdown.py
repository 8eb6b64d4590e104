"""SIGTERM: stop accepting, let in-flight streams and requests whose header
has started finish, exit 0 without waiting out the whole grace period."""

import json
import signal
import socket
import time

from configs import ALICE_KEY, llm_config, server_table
from conftest import chat


def test_sigterm_lets_a_stream_finish_then_exits(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    mock.behave(chunks=20, chunk_delay_ms=100)
    started = time.monotonic()
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": ALICE_KEY}) as r:
        lines = r.iter_lines()
        assert next(l for l in lines if l.startswith("data:"))
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        # New connections are refused while the stream drains.
        try:
            with socket.create_connection(("127.0.0.1", gw.port), timeout=1):
                refused = False
        except OSError:
            refused = True
        assert refused, "the listener still accepts after SIGTERM"
        rest = [l for l in lines if l.startswith("data:")]
    assert rest[-1] == "data: [DONE]", "the in-flight stream was cut"
    code = gw.proc.wait(timeout=15)
    assert code == 0
    # The default grace period is 30 s: exiting when idle must not wait it out.
    assert time.monotonic() - started < 15
    (line,) = [l for l in gw.access_log() if l["path"] == "/chat"]
    assert line["status"] == 200, "the access-log line of the drained stream was lost"


def half_sent_request(port: int) -> tuple[socket.socket, bytes]:
    """A connection that has sent the first half of a chat request's header;
    returns it and the rest of the request."""
    body = json.dumps(chat()).encode()
    request = (
        f"POST /chat HTTP/1.1\r\nHost: gw\r\napikey: {ALICE_KEY}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(request[:30])
    return s, request[30:]


def read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_sigterm_serves_a_request_whose_header_had_started(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, server=server_table(client_header_timeout=30000)))
    idle = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    s, rest = half_sent_request(gw.port)
    time.sleep(0.3)
    gw.proc.send_signal(signal.SIGTERM)
    # The idle connection is closed at shutdown: it had asked nothing.
    assert idle.recv(100) == b""
    time.sleep(1.0)  # well after the shutdown: Pingora used to close the half-read one too
    assert gw.proc.poll() is None, "exited while a request header was arriving"
    s.sendall(rest)
    answer = read_all(s)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b"mock reply to: What is 1+1?" in answer
    assert gw.proc.wait(timeout=15) == 0
    (line,) = [l for l in gw.access_log() if l["path"] == "/chat"]
    assert line["status"] == 200
