#!/usr/bin/env python3
"""Soak: the real gateway under mixed, bounded loopback traffic with provider
faults and config reloads, for minutes; RSS must stay flat and every answer
must be one the scenario expects.

    make soak                     # 10 minutes (SOAK_MINUTES=N to change)
    .venv/bin/python tests/soak.py --minutes 10

Traffic, all at once (a handful of client threads, so the load is bounded):
  - chat completions, JSON and streamed, over ai-proxy-advanced with a flaky
    target whose faults change every few seconds (connection reset before
    headers, 503, an HTML 502): failover must hide every one of them;
  - streams the client abandons after the first event;
  - bad input: malformed JSON (400), an oversized body (413), a wrong key (401);
  - MCP through ai-mcp-proxy (the Python SDK's server): tools/list, an allowed
    call, a denied call;
  - slow clients (slowloris) from a second loopback IP: 80 connections at a
    time sending a header byte every 0.3 s; the per-IP cap (64) closes the
    rest at once and each kept one gets 408 at the 2 s header deadline;
  - a SIGHUP every 15 s, every other one with an invalid file (rejected).
Writes a report to bench/results/soak-<time>.md; exits 1 on any unexpected
answer or if RSS grew more than 15 % (+4 MiB) between the end of the warm-up
minute and the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "e2e"))
from conftest import ROOT, Gateway, Mock, chat  # noqa: E402
from test_mcp import McpServer, stateless_call, stateless_headers  # noqa: E402

KEY = "soak-key"
# Slow clients come from another loopback IP (all of 127/8 is lo on Linux).
SLOW_IP = "127.0.0.2"
SLOW_CONNECTIONS = 80
SLOW_CAP = 64
FAULTS = [{"fault": "reset_before_headers"}, {"status": 503}, {"fault": "html"}, {}]


def config(good: Mock, flaky: Mock, mcp: McpServer, generation: int, access_log: str = "off") -> str:
    return f"""
[server]
listen = ["127.0.0.1:@PORT@"]
admin_listen = "127.0.0.1:@ADMIN_PORT@"
max_request_body_size = 65536
access_log = "{access_log}"
client_header_timeout = 2000
max_connections_per_ip = {SLOW_CAP}

[[services]]
name = "llm"
tags = ["generation-{generation}"]

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[services]]
name = "mcp"
url = "{mcp.url}"

[[routes]]
name = "mcp"
service = "mcp"
paths = ["/mcp"]
strip_path = false

[[consumers]]
username = "soak"
groups = ["developer"]
keyauth_credentials = [{{ key = "{KEY}" }}]

[[plugins]]
name = "key-auth"

[[plugins]]
name = "ai-proxy-advanced"
service = "llm"
[plugins.config.balancer]
algorithm = "round-robin"
retries = 2
failover_criteria = ["error", "timeout", "http_502", "http_503"]
[[plugins.config.targets]]
logging = {{ log_statistics = true }}
model = {{ provider = "openai", name = "gpt-4o", options = {{ upstream_url = "{flaky.chat_url}" }} }}
[[plugins.config.targets]]
logging = {{ log_statistics = true }}
model = {{ provider = "openai", name = "gpt-4o", options = {{ upstream_url = "{good.chat_url}" }} }}

[[plugins]]
name = "ai-mcp-proxy"
service = "mcp"
[plugins.config]
default_acl = [{{ scope = "tools", allow = ["developer"] }}]
[[plugins.config.tools]]
name = "delete_user"
acl = {{ allow = ["admin"] }}
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Soak:
    def __init__(self, gw: Gateway):
        self.gw = gw
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: Counter = Counter()
        self.unexpected: list[str] = []

    def record(self, kind: str, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.outcomes[kind if ok else f"{kind}: UNEXPECTED"] += 1
            if not ok and len(self.unexpected) < 50:
                self.unexpected.append(f"{kind}: {detail[:300]}")

    def loop(self, kind: str, step) -> None:
        with httpx.Client(base_url=self.gw.url, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    ok, detail = step(c)
                except (httpx.HTTPError, ValueError, KeyError, IndexError) as e:
                    ok, detail = False, repr(e)
                self.record(kind, ok, detail)

    # One kind of traffic each; (expected?, detail).
    def chat_json(self, c):
        r = c.post("/chat", json=chat(), headers={"apikey": KEY})
        if r.status_code != 200:
            return False, f"{r.status_code} {r.text}"
        return bool(r.json()["choices"]), r.text

    def chat_stream(self, c):
        with c.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": KEY}) as r:
            data = [l for l in r.iter_lines() if l.startswith("data:")]
        return r.status_code == 200 and data[-1:] == ["data: [DONE]"], f"{r.status_code} {data[-2:]}"

    def abandoned_stream(self, c):
        with c.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": KEY}) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    break
        return r.status_code == 200, str(r.status_code)

    def slowloris(self) -> None:
        """Rounds of SLOW_CONNECTIONS slow connections, until the soak ends."""
        header = b"POST /chat HTTP/1.1\r\nHost: soak\r\nx-slow: " + b"a" * 200
        while not self.stop.is_set():
            ok, detail = self.slow_round(header)
            self.record("slowloris", ok, detail)

    def slow_round(self, header: bytes) -> tuple[bool, str]:
        socks = []
        for _ in range(SLOW_CONNECTIONS):
            try:
                socks.append(socket.create_connection(("127.0.0.1", self.gw.port), timeout=5,
                                                      source_address=(SLOW_IP, 0)))
            except OSError as e:
                return False, f"connect: {e!r}"
        for s in socks:
            s.setblocking(False)
        ends: Counter = Counter()
        pending, sent = list(socks), 0
        deadline = time.monotonic() + 6  # three times the header deadline
        while pending and time.monotonic() < deadline:
            still = []
            for s in pending:
                try:
                    data = s.recv(4096)
                    ends["408" if data.startswith(b"HTTP/1.1 408") else "closed" if not data else "other"] += 1
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    ends["closed"] += 1
                    continue
                try:
                    s.send(header[sent : sent + 1])
                    still.append(s)
                except OSError:
                    ends["closed"] += 1
            pending, sent = still, sent + 1
            time.sleep(0.3)
        for s in socks:
            s.close()
        ok = not pending and ends["other"] == 0 and 0 < ends["408"] <= SLOW_CAP
        return ok, f"{dict(ends)}, {len(pending)} still open after 6 s"

    def bad_input(self, c):
        h = {"apikey": KEY, "content-type": "application/json"}
        a = c.post("/chat", content=b'{"messages": [', headers=h).status_code
        b = c.post("/chat", content=b"x" * 70_000, headers=h).status_code
        d = c.post("/chat", json=chat(), headers={"apikey": "wrong"}).status_code
        return (a, b, d) == (400, 413, 401), f"{(a, b, d)}"

    def mcp(self, c):
        h = {**stateless_headers("tools/list"), "apikey": KEY}
        meta = stateless_call("x", {})["params"]["_meta"]
        listed = c.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}})
        echo = c.post("/mcp", headers={**stateless_headers("tools/call", "echo"), "apikey": KEY},
                      json=stateless_call("echo", {"text": "soak"}))
        denied = c.post("/mcp", headers={**stateless_headers("tools/call", "delete_user"), "apikey": KEY},
                        json=stateless_call("delete_user", {"user_id": "1"}))
        detail = " | ".join(f"{r.status_code} {r.headers.get('content-type')} {r.text[:120]!r}" for r in (listed, echo, denied))
        try:
            names = [t["name"] for t in listed.json().get("result", {}).get("tools", [])]
            ok = ("echo" in names and "delete_user" not in names
                  and echo.json().get("result", {}).get("isError") is False
                  and denied.json().get("error", {}).get("code") == -32602)
        except ValueError:
            ok = False
        return ok, detail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--access-log", default="off", help="where the gateway writes its access log (default off: it grows by GBs)")
    args = ap.parse_args()
    duration = args.minutes * 60
    warmup = min(60.0, duration / 4)

    good, flaky = Mock(), Mock()
    good.behave(chunks=16, chunk_delay_ms=5)
    flaky.behave(chunks=16, chunk_delay_ms=5)
    mcp = McpServer("soak")
    tmp = Path(tempfile.mkdtemp(prefix="tollgate-soak-"))
    gw = Gateway(config(good, flaky, mcp, 0, args.access_log), tmp)
    soak = Soak(gw)
    kinds = [("chat_json", soak.chat_json), ("chat_json", soak.chat_json), ("chat_stream", soak.chat_stream),
             ("abandoned_stream", soak.abandoned_stream), ("bad_input", soak.bad_input), ("mcp", soak.mcp)]
    threads = [threading.Thread(target=soak.loop, args=k, daemon=True) for k in kinds]
    threads.append(threading.Thread(target=soak.slowloris, daemon=True))
    started = time.monotonic()
    for t in threads:
        t.start()

    samples: list[tuple[float, int]] = []
    reloads = Counter()
    good_text = gw.config_path.read_text()
    next_fault = next_reload = next_sample = 0.0
    generation = 0
    try:
        while (elapsed := time.monotonic() - started) < duration:
            if elapsed >= next_sample:
                samples.append((elapsed, rss_kib(gw.proc.pid)))
                next_sample += 5
            if elapsed >= next_fault:
                flaky.behave(chunks=16, chunk_delay_ms=5, **FAULTS[int(elapsed // 4) % len(FAULTS)])
                next_fault += 4
            if elapsed >= next_reload and elapsed > 0:
                generation += 1
                if generation % 2:
                    good_text = config(good, flaky, mcp, generation, args.access_log).replace("@PORT@", str(gw.port)).replace(
                        "@ADMIN_PORT@", str(gw.admin_port))
                    gw.config_path.write_text(good_text)
                    reloads["good"] += 1
                else:
                    gw.config_path.write_text(good_text + f"\nbroken_{generation} = 1\n")
                    reloads["bad"] += 1
                gw.proc.send_signal(signal.SIGHUP)
            if elapsed >= next_reload:
                next_reload += 15
            if gw.proc.poll() is not None:
                soak.record("gateway", False, f"exited {gw.proc.returncode}")
                break
            time.sleep(0.2)
    finally:
        soak.stop.set()
        for t in threads:
            t.join(timeout=30)
        samples.append((time.monotonic() - started, rss_kib(gw.proc.pid)))
        status = httpx.get(f"{gw.admin_url}/status", timeout=5).json()
        metrics = gw.metrics()
        gw.stop()
        for m in (good, flaky):
            m.stop()
        mcp.stop()

    warm = next((kib for t, kib in samples if t >= warmup), samples[-1][1])
    end = samples[-1][1]
    peak = max(kib for _, kib in samples)
    rss_ok = end <= warm * 1.15 + 4096
    failovers = sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("ai_target_failovers_total{"))
    total = sum(soak.outcomes.values())
    lines = [
        f"# Soak {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "",
        f"{args.minutes:g} minutes; {total} client operations; {int(failovers)} failovers hid the flaky target's faults;",
        f"{reloads['good']} good and {reloads['bad']} bad reloads (last reload ok: {status['reload']['last_reload_ok']}).",
        "",
        "| outcome | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(soak.outcomes.items())],
        "",
        f"RSS: {warm / 1024:.1f} MiB after warm-up, {end / 1024:.1f} MiB at the end, peak {peak / 1024:.1f} MiB"
        f" ({'flat' if rss_ok else 'GREW'}).",
        "",
        "RSS samples (s, MiB): " + ", ".join(f"{t:.0f}:{kib / 1024:.1f}" for t, kib in samples[:: max(1, len(samples) // 24)]),
    ]
    if soak.unexpected:
        lines += ["", "Unexpected answers:", *[f"- {u}" for u in soak.unexpected]]
    report = "\n".join(lines) + "\n"
    out = ROOT / "bench" / "results" / f"soak-{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H%M%SZ')}.md"
    out.write_text(report)
    print(report)
    print(f"report: {out}")
    return 0 if rss_ok and not soak.unexpected else 1


if __name__ == "__main__":
    sys.exit(main())
