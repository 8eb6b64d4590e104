"""Slow clients (slowloris): a request header or body must arrive whole within
`server.client_header_timeout` / `client_body_timeout` (total deadlines, which
a byte now and then does not restart), else 408 and an access-log line; one
client IP holds at most `server.max_connections_per_ip` connections; and a
thousand slow connections do not stop anyone else from being served."""

import json
import resource
import socket
import threading
import time

import httpx

from configs import ALICE_KEY, llm_config, passthrough_block, poll, server_table
from conftest import chat

# A second loopback address: Linux routes all of 127/8 to lo, so connections
# from it are another client IP to the gateway.
OTHER_IP = "127.0.0.2"


def raw_request(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: gw\r\napikey: {ALICE_KEY}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def trickle(s: socket.socket, data: bytes, every: float) -> bytes:
    """Sends `data` a byte at a time until the gateway answers or closes;
    returns what it answered."""
    s.settimeout(every)
    for b in data:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        try:
            got = s.recv(65536)
            return got + read_rest(s)
        except socket.timeout:
            continue
    return read_rest(s)


def read_rest(s: socket.socket) -> bytes:
    s.settimeout(10)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except OSError:
        pass
    return out


def header_failures(gw, status: str) -> float:
    for line in gw.metrics().splitlines():
        if line.startswith(f'tollgate_request_header_failures_total{{status="{status}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_header_sent_a_byte_at_a_time_gets_408_at_the_deadline(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, server=server_table(client_header_timeout=1000)))
    s = connect(gw.port)
    started = time.monotonic()
    # A byte every 0.2 s: Pingora's per-read timeout (60 s) would restart at each.
    answer = trickle(s, raw_request("/chat", json.dumps(chat()).encode()), every=0.2)
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert took < 5, f"the header deadline is total, not per read: answered after {took:.1f} s"
    assert not mock.requests(), "a request whose header never arrived reached the provider"
    (line,) = poll(lambda: [l for l in gw.access_log() if l["status"] == 408])
    assert line["client_ip"].startswith("127.0.0.1:")
    assert "header" in line["error"] and "1s" in line["error"], line
    assert ALICE_KEY not in json.dumps(line)
    assert header_failures(gw, "408") == 1


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline_quietly(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, server=server_table(client_header_timeout=1000)))
    s = connect(gw.port)
    started = time.monotonic()
    s.settimeout(10)
    assert s.recv(100) == b"", "closed without an answer: nothing was asked"
    assert time.monotonic() - started < 5, "held past the header deadline (Pingora's idle wait is 60 s)"
    # A request on a fresh connection still works, and nothing was logged for the idle one.
    assert gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY}).status_code == 200
    assert [l["status"] for l in gw.access_log(wait_for=1)] == [200]


def test_a_malformed_header_is_logged_without_its_bytes(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    s = connect(gw.port)
    s.sendall(b"POST /chat HTTP/1.1\r\nHost: gw\r\napikey: " + ALICE_KEY.encode() + b"\r\nbad header line\r\n\r\n")
    assert read_rest(s).startswith(b"HTTP/1.1 400")
    (line,) = poll(lambda: [l for l in gw.access_log() if l["status"] == 400])
    assert line["error"] == "malformed request header"
    assert ALICE_KEY not in json.dumps(line), "the header's bytes (a key among them) were logged"
    assert header_failures(gw, "400") == 1


def test_a_body_sent_a_byte_at_a_time_gets_408_in_the_routes_shape(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, server=server_table(client_body_timeout=1000)))
    s = connect(gw.port)
    body = json.dumps(chat()).encode()
    head, rest = raw_request("/chat", body).split(b"\r\n\r\n", 1)
    s.sendall(head + b"\r\n\r\n")
    started = time.monotonic()
    answer = trickle(s, rest, every=0.2)
    assert time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert "client_body_timeout" in error["message"] and "1000 ms" in error["message"], error
    assert not mock.requests()
    (line,) = poll(lambda: [l for l in gw.access_log() if l["path"] == "/chat"])
    assert line["status"] == 408


def test_a_slow_passthrough_body_gets_408(mock, gateway_factory):
    config = llm_config(mock, server=server_table(client_body_timeout=1000), extra=passthrough_block(mock.url))
    gw = gateway_factory(config)
    s = connect(gw.port)
    body = json.dumps(chat()).encode()
    head, rest = raw_request("/passthrough/v1/chat/completions", body).split(b"\r\n\r\n", 1)
    s.sendall(head + b"\r\n\r\n")
    started = time.monotonic()
    answer = trickle(s, rest, every=0.2)
    assert time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"client_body_timeout" in answer
    (line,) = poll(lambda: [l for l in gw.access_log() if l["path"].startswith("/passthrough")])
    assert line["status"] == 408
    # A body that arrives in time still streams through.
    r = gw.http.post("/passthrough/v1/chat/completions", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200


def test_one_ip_holds_at_most_max_connections_per_ip(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, server=server_table(max_connections_per_ip=3)))
    held = [connect(gw.port, OTHER_IP) for _ in range(3)]
    time.sleep(0.2)
    extra = connect(gw.port, OTHER_IP)
    extra.settimeout(5)
    try:
        closed = extra.recv(100) == b""
    except ConnectionResetError:
        closed = True
    assert closed, "a fourth connection from one IP was kept"
    # Another IP is not affected.
    assert gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY}).status_code == 200
    # Closing one makes room; the room is used for a real request.
    held.pop().close()
    time.sleep(0.2)
    s = connect(gw.port, OTHER_IP)
    s.sendall(raw_request("/chat", json.dumps(chat()).encode(), extra="connection: close\r\n"))
    assert read_rest(s).startswith(b"HTTP/1.1 200")
    assert "tollgate_connections_refused_total 1" in gw.metrics()


def test_a_thousand_slowloris_connections_do_not_stop_other_clients(mock, gateway_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    gw = gateway_factory(
        llm_config(mock, server=server_table(client_header_timeout=2000, max_connections_per_ip=200))
    )
    attack_done = threading.Event()
    outcome = {"held": 0, "answered_408": 0, "closed": 0}

    def slowloris():
        socks = []
        for _ in range(1000):
            try:
                socks.append(connect(gw.port, OTHER_IP))
            except OSError:
                outcome["closed"] += 1
        header = raw_request("/chat", json.dumps(chat()).encode())
        for s in socks:
            s.setblocking(False)
        # A byte per connection every 0.25 s, for up to 6 s.
        open_socks = list(socks)
        for i in range(24):
            still = []
            for s in open_socks:
                try:
                    data = s.recv(4096)
                    if data.startswith(b"HTTP/1.1 408"):
                        outcome["answered_408"] += 1
                    else:
                        outcome["closed"] += 1
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    outcome["closed"] += 1
                    continue
                try:
                    s.send(header[i : i + 1])
                except OSError:
                    outcome["closed"] += 1
                    continue
                still.append(s)
            open_socks = still
            time.sleep(0.25)
        outcome["held"] = len(open_socks)
        for s in socks:
            s.close()
        attack_done.set()

    attacker = threading.Thread(target=slowloris)
    attacker.start()
    statuses = []
    with httpx.Client(base_url=gw.url, timeout=10) as c:
        while not attack_done.is_set():
            statuses.append(c.post("/chat", json=chat(), headers={"apikey": ALICE_KEY}).status_code)
    attacker.join()
    assert statuses and set(statuses) == {200}, statuses[:20]
    assert len(statuses) >= 20, "other clients were starved during the attack"
    assert outcome["held"] == 0, f"slow connections outlived the 2 s header deadline: {outcome}"
    assert outcome["answered_408"] > 0, outcome
    # Every slow connection was either closed at once (over the cap of 200)
    # or answered 408 at its deadline.
    refused = next(float(l.split()[-1]) for l in gw.metrics().splitlines()
                   if l.startswith("tollgate_connections_refused_total "))
    timed_out = header_failures(gw, "408")
    assert refused > 0 and refused + timed_out == 1000, (refused, timed_out)
