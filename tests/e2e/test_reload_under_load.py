"""50 SIGHUPs, every other one with an invalid file, while loopback load runs:
no request fails, no stream is cut, every bad file is rejected and reported,
and a token budget keeps holding across the reloads."""

import json
import signal
import threading
import time

import httpx

from configs import ALICE_KEY, llm_config
from conftest import chat
from test_reload import reload_count, status, wait_for

TENANT_KEY = "tenant-key"
BUDGET = 3000
RELOADS = 50

CONSUMERS = f"""
[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{ALICE_KEY}" }}]

[[consumers]]
username = "tenant"
keyauth_credentials = [{{ key = "{TENANT_KEY}" }}]
"""


def config(mock, generation: int) -> str:
    # Only the service's tags change between good files: the limit is the same
    # plugin in the same scope, so its counters must carry over.
    text = llm_config(mock, consumers=CONSUMERS, extra=f"""
[[plugins]]
name = "ai-rate-limiting-advanced"
consumer = "tenant"
[plugins.config]
window_type = "sliding"
llm_providers = [{{ name = "openai", window_size = [60], limit = [{BUDGET}] }}]
""")
    return text.replace('name = "llm"\n', f'name = "llm"\ntags = ["generation-{generation}"]\n', 1)


def test_fifty_reloads_under_load_lose_nothing(mock, gateway_factory):
    mock.behave(chunks=8, chunk_delay_ms=25)
    gw = gateway_factory(config(mock, 0))
    stop = threading.Event()
    failures: list[str] = []
    counts = {"json": 0, "stream": 0, "tenant_admitted": 0, "tenant_refused": 0, "tenant_tokens": 0}
    lock = threading.Lock()

    def json_load():
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
                with lock:
                    if r.status_code == 200 and r.json()["choices"][0]["message"]["content"]:
                        counts["json"] += 1
                    else:
                        failures.append(f"json {r.status_code} {r.text[:200]}")

    def stream_load():
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            while not stop.is_set():
                with c.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": ALICE_KEY}) as r:
                    lines = [l for l in r.iter_lines() if l.startswith("data:")]
                with lock:
                    if r.status_code == 200 and lines and lines[-1].strip() == "data: [DONE]":
                        counts["stream"] += 1
                    else:
                        failures.append(f"stream {r.status_code} cut after {len(lines)} events")

    def tenant_load():
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/chat", json=chat(max_tokens=50), headers={"apikey": TENANT_KEY})
                with lock:
                    if r.status_code == 200:
                        counts["tenant_admitted"] += 1
                        counts["tenant_tokens"] += r.json()["usage"]["total_tokens"]
                    elif r.status_code == 429:
                        counts["tenant_refused"] += 1
                    else:
                        failures.append(f"tenant {r.status_code} {r.text[:200]}")
                time.sleep(0.005)

    workers = [threading.Thread(target=f) for f in (json_load, json_load, stream_load, stream_load, tenant_load)]
    for w in workers:
        w.start()
    try:
        good = gw.config_path.read_text()
        for i in range(1, RELOADS + 1):
            if i % 2:
                gw.config_path.write_text(config(mock, i))
                gw.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: reload_count(gw, "success") == (i + 1) // 2, f"good reload {i}")
            else:
                gw.config_path.write_text(good + f"\nunknown_field_{i} = 1\n")
                gw.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: reload_count(gw, "failure") == i // 2, f"rejected reload {i}")
                assert f"unknown_field_{i}" in status(gw)["reload"]["last_reload_error"]
            time.sleep(0.05)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)

    assert not failures, failures[:5]
    assert reload_count(gw, "success") == RELOADS // 2
    assert reload_count(gw, "failure") == RELOADS // 2
    assert counts["json"] > 50 and counts["stream"] > 10, counts
    # The budget held across 25 good reloads: had any reset the counters, the
    # tenant would have been admitted far more than the budget.
    assert counts["tenant_refused"] > 0, counts
    assert counts["tenant_tokens"] <= BUDGET, counts
    assert gw.proc.poll() is None
    print(json.dumps(counts))
