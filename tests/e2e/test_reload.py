"""SIGHUP reloads the config atomically; a bad file changes nothing and is reported."""

import signal
import threading
import time
from pathlib import Path

import httpx

from configs import llm_config
from conftest import chat

def config(mock, key: str) -> str:
    return llm_config(mock, consumers=f"""
[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{key}" }}]
""")


def status(gw) -> dict:
    return httpx.get(f"{gw.admin_url}/status", timeout=5).json()


def reload_count(gw, result: str) -> int:
    for line in gw.metrics().splitlines():
        if line.startswith(f'tollgate_config_reloads_total{{result="{result}"}}'):
            return int(float(line.split()[-1]))
    return 0


def caught_signals(pid: int) -> int:
    """The process's SigCgt mask (0 while it has no handler, or is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(l.split()[1], 16) for l in status.splitlines() if l.startswith("SigCgt:")), 0)


def wait_for(predicate, what: str):
    for _ in range(250):
        if predicate():
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_sighup_swaps_keys_and_rejects_bad_files(mock, gateway_factory):
    gw = gateway_factory(config(mock, "old-key"))
    ok = lambda key: gw.http.post("/chat", json=chat(), headers={"apikey": key}).status_code
    assert ok("old-key") == 200

    gw.config_path.write_text(gw.config_path.read_text().replace("old-key", "new-key"))
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reload_count(gw, "success") == 1, "a successful reload")
    assert ok("new-key") == 200
    assert ok("old-key") == 401

    gw.config_path.write_text(gw.config_path.read_text() + "\nunknown_field = 1\n")
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reload_count(gw, "failure") == 1, "a rejected reload")
    assert ok("new-key") == 200, "a bad file must change nothing"
    st = status(gw)["reload"]
    assert st["last_reload_ok"] is False
    assert "unknown_field" in st["last_reload_error"]
    assert gw.proc.poll() is None


def test_stream_in_flight_survives_a_reload(mock, gateway_factory):
    gw = gateway_factory(config(mock, "k"))
    mock.behave(chunks=10, chunk_delay_ms=100)
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": "k"}) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(l for l in lines if l.startswith("data:"))
        assert first
        # Reload to a config that no longer knows this key, mid-stream.
        gw.config_path.write_text(gw.config_path.read_text().replace('key = "k"', 'key = "other"'))
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: reload_count(gw, "success") == 1, "a successful reload")
        rest = [l for l in lines if l.startswith("data:")]
    assert rest[-1] == "data: [DONE]", "the stream must finish on the config it started with"
    assert gw.http.post("/chat", json=chat(), headers={"apikey": "k"}).status_code == 401


def test_sighup_right_after_start_reloads_and_does_not_kill(mock, gateway_factory):
    """A supervisor that edits the file and signals as the process starts (before
    the reloader listens) must neither kill it (SIGHUP's default action) nor have
    its signal lost: the edited key is the one that works once the gateway is up."""

    def edit_and_signal(gw):
        gw.config_path.write_text(gw.config_path.read_text().replace("old-key", "new-key"))
        # Rust's runtime catches SIGSEGV before main runs: from then on the
        # process is tollgate's code. Signals then land in each start-up phase
        # (config load, bootstrap, services starting), the reloader listening
        # only at the end of them (tens of milliseconds here).
        deadline = time.monotonic() + 5
        while caught_signals(gw.proc.pid) == 0 and time.monotonic() < deadline:
            time.sleep(0.0002)
        for pause in (0.003, 0.003, 0.005, 0.01, 0.02, 0.05):
            time.sleep(pause)
            if gw.proc.poll() is not None:
                break
            gw.proc.send_signal(signal.SIGHUP)

    gw = gateway_factory(config(mock, "old-key"), on_spawn=edit_and_signal)
    wait_for(lambda: gw.http.post("/chat", json=chat(), headers={"apikey": "new-key"}).status_code == 200,
             "the edited key to work")
    assert gw.http.post("/chat", json=chat(), headers={"apikey": "old-key"}).status_code == 401
    assert gw.proc.poll() is None
