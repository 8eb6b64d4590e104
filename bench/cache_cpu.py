#!/usr/bin/env python3
"""The cache hit path against a miss, on the real binaries: the gateway's CPU
time per request (utime + stime from /proc, divided by the requests wrk
completed) and its throughput, for

  hit   the same deterministic request again and again (one miss, then hits)
  miss  a new prompt on every request (every one goes to the mock and is stored)
  none  the same requests as `miss` on a route without ai-semantic-cache

with one gateway worker thread, the mock in-process on loopback and wrk as the
client. Usage: python3 bench/cache_cpu.py [--bin-dir target/release] [--duration 5]
Standard library only; needs wrk."""

import argparse
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

# The /proc and wrk helpers of the main benchmark, not copies of them.
from run import ROOT, cpu_ticks, free_port, parse_wrk
KEY = "bench-client-key"

HIT_LUA = """
wrk.method = "POST"
wrk.body = '{"temperature":0,"messages":[{"role":"user","content":"What is 1+1?"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["apikey"] = "%s"
""" % KEY

MISS_LUA = """
local n = 0
local id = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  local body = '{"temperature":0,"messages":[{"role":"user","content":"Question ' .. id .. '-' .. n .. '?"}]}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["apikey"] = "%s"}, body)
end
""" % KEY


def config(mock_url: str, port: int, admin: int, cache: bool) -> str:
    plugin = """
[[plugins]]
name = "ai-semantic-cache"
service = "llm"
[plugins.config]
max_entries = 1000000
""" if cache else ""
    return f"""
[server]
listen = ["127.0.0.1:{port}"]
admin_listen = "127.0.0.1:{admin}"
threads = 1
access_log = "off"

[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[consumers]]
username = "bench"
keyauth_credentials = [{{ key = "{KEY}" }}]

[[plugins]]
name = "key-auth"
service = "llm"

[[plugins]]
name = "ai-proxy"
service = "llm"
[plugins.config]
route_type = "llm/v1/chat"
auth = {{ header_name = "Authorization", header_value = "Bearer sk-bench" }}
[plugins.config.model]
provider = "openai"
name = "gpt-4o"
[plugins.config.model.options]
upstream_url = "{mock_url}/v1/chat/completions"
{plugin}"""


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def wrk(url: str, script: Path, duration: int, conns: int) -> int:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    run = parse_wrk(out)
    if run["non2xx"]:
        raise RuntimeError(f"errors in the run:\n{out}")
    return run["requests"]


def measure(gw_pid: int, mock_pid: int, url: str, script: Path, duration: int, conns: int) -> dict:
    g0, m0, t0 = cpu_ticks([gw_pid]), cpu_ticks([mock_pid]), time.monotonic()
    n = wrk(url, script, duration, conns)
    g1, m1, t1 = cpu_ticks([gw_pid]), cpu_ticks([mock_pid]), time.monotonic()
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "requests": n,
        "rps": n / (t1 - t0),
        "gateway_us": (g1 - g0) / hz / max(n, 1) * 1e6,
        "mock_us": (m1 - m0) / hz / max(n, 1) * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default=str(ROOT / "target" / "release"))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=8)
    args = ap.parse_args()
    bins = Path(args.bin_dir)
    tmp = Path(tempfile.mkdtemp(prefix="cache-cpu-"))
    (tmp / "hit.lua").write_text(HIT_LUA)
    (tmp / "miss.lua").write_text(MISS_LUA)
    mock = subprocess.Popen([str(bins / "tollgate-mock"), "--listen", "127.0.0.1:0", "--threads", "1", "--no-record"],
                            stdout=subprocess.PIPE, text=True)
    procs = [mock]
    try:
        mock_url = "http://" + re.search(r"listening on (\S+)", mock.stdout.readline()).group(1)
        results = {}
        for name, cache, script in (("hit", True, "hit.lua"), ("miss", True, "miss.lua"), ("none", False, "miss.lua")):
            port, admin = free_port(), free_port()
            path = tmp / f"{name}.toml"
            path.write_text(config(mock_url, port, admin, cache))
            gw = subprocess.Popen([str(bins / "tollgate"), "run", "-c", str(path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(gw)
            wait_port(port)
            url = f"http://127.0.0.1:{port}/chat"
            # Warm up (and, for `hit`, store the one answer).
            wrk(url, tmp / script, 1, args.conns)
            results[name] = measure(gw.pid, mock.pid, url, tmp / script, args.duration, args.conns)
            gw.terminate()
            gw.wait()
        print(f"binaries: {bins}, {args.conns} connections, {args.duration} s per run, one gateway thread\n")
        print("| run | requests/s | gateway CPU per request (µs) | mock CPU per request (µs) |")
        print("|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} | {r['rps']:.0f} | {r['gateway_us']:.1f} | {r['mock_us']:.1f} |")
        print()
        print(f"hit / miss gateway CPU: {results['hit']['gateway_us'] / results['miss']['gateway_us']:.2f}")
        print(json.dumps(results))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()


if __name__ == "__main__":
    main()
