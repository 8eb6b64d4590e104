"""`Last-Event-ID` resumption across gateway replicas: two gateways share an
event log in Redis; a stream started on one and cut off is resumed on the
other, which sends exactly the events the client missed, then the rest.
Redis down: streams work as on one replica, and the failures are counted.
"""

import json
import re
import subprocess
import time

import httpx

from configs import BOB_KEY
from conftest import free_port
from test_mcp import mcp_config, mcp_servers  # noqa: F401
from test_token_limits import Redis

ACCEPT = "application/json, text/event-stream"


def event_log(port: int) -> str:
    return f'event_log = {{ redis = {{ host = "127.0.0.1", port = {port}, timeout = 500 }}, ttl = 60 }}'


def open_session(url: str) -> dict:
    """Headers of a fresh 2025-11-25 session."""
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}}}
    r = httpx.post(url, json=init, headers={"apikey": BOB_KEY, "accept": ACCEPT}, timeout=10)
    assert r.status_code == 200, r.text
    h = {"apikey": BOB_KEY, "accept": ACCEPT, "mcp-session-id": r.headers["mcp-session-id"],
         "mcp-protocol-version": "2025-11-25"}
    note = httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h, timeout=10)
    assert note.status_code == 202
    return h


def count_call(n: int) -> dict:
    return {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "count", "arguments": {"n": n}, "_meta": {"progressToken": "p"}}}


def events(lines) -> list[dict]:
    """SSE events as {id, data}, read until the stream ends."""
    out, current = [], {}
    for line in lines:
        if line.startswith("id:"):
            current["id"] = line[3:].strip()
        elif line.startswith("data:"):
            current["data"] = json.loads(line[5:])
        elif line == "" and current:
            out.append(current)
            current = {}
    return out


def what(event: dict) -> str:
    d = event["data"]
    if d.get("method") == "notifications/progress":
        return f"progress {int(d['params']['progress'])}"
    return d["result"]["content"][0]["text"]


def resume(gw, headers: dict, last_id: str) -> httpx.Response:
    return httpx.get(gw.url + "/mcp", headers={**headers, "last-event-id": last_id}, timeout=15)


def test_a_stream_cut_off_on_one_replica_resumes_on_the_other_with_exactly_the_missed_events(
        mcp_servers, gateway_factory):
    redis = Redis()
    try:
        server = mcp_servers("r1")
        config = mcp_config(server.url, plugin_extra=event_log(redis.port))
        gw_a, gw_b = gateway_factory(config, name="gw-a"), gateway_factory(config, name="gw-b")
        h = open_session(gw_a.url + "/mcp")

        # Started on A: three events read, then the client is cut off.
        seen = []
        with httpx.Client(timeout=15) as c, c.stream("POST", gw_a.url + "/mcp", json=count_call(8), headers=h) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines, current = r.iter_lines(), {}
            for line in lines:
                if line.startswith("id:"):
                    current["id"] = line[3:].strip()
                elif line.startswith("data:"):
                    current["data"] = json.loads(line[5:])
                elif line == "" and current:
                    seen.append(current)
                    current = {}
                    if len(seen) == 3:
                        break
        assert [what(e) for e in seen] == ["progress 1", "progress 2", "progress 3"]
        ids = [e["id"] for e in seen]
        assert all(re.fullmatch(r"tge1\.[0-9a-f]{32}\.\d+", i) for i in ids), ids
        assert [i.rsplit(".", 1)[1] for i in ids] == ["1", "2", "3"]

        # Resumed on B: exactly what was missed, then the answer, then the end.
        r = resume(gw_b, h, ids[-1])
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
        missed = events(r.text.splitlines() + [""])
        assert [what(e) for e in missed] == [f"progress {i}" for i in range(4, 9)] + ["counted 8"]
        assert [e["id"] for e in missed] == [f"{ids[0].rsplit('.', 1)[0]}.{i}" for i in range(4, 10)]
        # Any replica tells the same story, from any point.
        assert resume(gw_a, h, ids[-1]).text == r.text
        assert [what(e) for e in events(resume(gw_b, h, ids[0]).text.splitlines() + [""])][:2] == [
            "progress 2", "progress 3"]

        # Resuming after the last event of a finished stream gets a fresh
        # stream from the server, not an empty one from the log (not counted
        # as resumed below).
        with httpx.Client(timeout=5) as c, c.stream("GET", gw_b.url + "/mcp",
                                                    headers={**h, "last-event-id": missed[-1]["id"]}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")

        # Another session cannot read this one's stream: its GET goes to the
        # server without the gateway's id (which the server could not know),
        # and the server opens a fresh stream.
        other = open_session(gw_b.url + "/mcp")
        with httpx.Client(timeout=5) as c, c.stream("GET", gw_b.url + "/mcp",
                                                    headers={**other, "last-event-id": ids[-1]}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        resumed = sum(int(m) for m in re.findall(r"^ai_mcp_resumed_streams_total (\d+)",
                                                  gw_a.metrics() + "\n" + gw_b.metrics(), re.M))
        assert resumed == 3
    finally:
        redis.stop()


def test_with_redis_down_streams_work_as_on_one_replica_and_failures_are_counted(mcp_servers, gateway_factory):
    server = mcp_servers("r1")
    gw = gateway_factory(mcp_config(server.url, plugin_extra=event_log(free_port())))
    h = open_session(gw.url + "/mcp")
    r = httpx.post(gw.url + "/mcp", json=count_call(3), headers=h, timeout=15)
    assert r.status_code == 200
    got = events(r.text.splitlines() + [""])
    assert [what(e) for e in got] == ["progress 1", "progress 2", "progress 3", "counted 3"]
    assert all("id" not in e for e in got), "no resumable ids without the log"

    # A GET naming a gateway id the log cannot serve goes to the server
    # without it (the SDK's server answers an id it does not know with 500):
    # a fresh stream, as on one replica.
    with httpx.Client(timeout=5) as c, c.stream("GET", gw.url + "/mcp",
                                                headers={**h, "last-event-id": "tge1." + "0" * 32 + ".1"}) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
    metrics = gw.metrics()
    assert re.search(r'ai_mcp_event_log_errors_total\{op="append"\} [1-9]', metrics), metrics
    assert re.search(r'ai_mcp_event_log_errors_total\{op="read"\} [1-9]', metrics), metrics


def test_a_log_trimmed_past_the_resumed_event_sends_the_get_to_the_server(mcp_servers, gateway_factory):
    redis = Redis()
    try:
        server = mcp_servers("r1")
        config = mcp_config(server.url, plugin_extra=event_log(redis.port).replace("ttl = 60", "ttl = 60, max_events = 2"))
        gw_a, gw_b = gateway_factory(config, name="gw-a"), gateway_factory(config, name="gw-b")
        h = open_session(gw_a.url + "/mcp")
        # The whole stream goes through A, whose log keeps only its last two entries.
        r = httpx.post(gw_a.url + "/mcp", json=count_call(6), headers=h, timeout=15)
        got = events(r.text.splitlines() + [""])
        assert [what(e) for e in got][-1] == "counted 6"
        # Events 2-6 are no longer in the log: resuming after event 1 from it
        # would skip them silently, so the GET goes to the server for a fresh stream.
        with httpx.Client(timeout=5) as c, c.stream("GET", gw_b.url + "/mcp",
                                                    headers={**h, "last-event-id": got[0]["id"]}) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        assert not re.search(r"^ai_mcp_resumed_streams_total [1-9]", gw_b.metrics(), re.M), gw_b.metrics()
    finally:
        redis.stop()


def redis_cli(redis, *args: str):
    subprocess.run(["redis-cli", "-p", str(redis.port), *args], check=True, capture_output=True, timeout=10)


def test_a_log_that_missed_an_event_is_not_resumed_from(mcp_servers, gateway_factory):
    redis = Redis()
    try:
        server = mcp_servers("r1")
        config = mcp_config(server.url, plugin_extra=event_log(redis.port))
        gw_a, gw_b = gateway_factory(config, name="gw-a"), gateway_factory(config, name="gw-b")
        h = open_session(gw_a.url + "/mcp")
        seen = []
        with httpx.Client(timeout=15) as c, c.stream("POST", gw_a.url + "/mcp", json=count_call(8), headers=h) as r:
            current = {}
            for line in r.iter_lines():
                if line.startswith("id:"):
                    current["id"] = line[3:].strip()
                elif line.startswith("data:"):
                    current["data"] = json.loads(line[5:])
                elif line == "" and current:
                    seen.append(current)
                    current = {}
                    if len(seen) == 2:
                        # Redis refuses writes from here on (DEL still works):
                        # the next append fails.
                        redis_cli(redis, "CONFIG", "SET", "maxmemory", "1")
        assert what(seen[-1]) == "counted 8" and "id" in seen[0] and "id" not in seen[-1], seen
        redis_cli(redis, "CONFIG", "SET", "maxmemory", "0")
        # The log lacks the events after the failed append and its end: the
        # GET goes to the server for a fresh stream instead of replaying it.
        with httpx.Client(timeout=5) as c, c.stream("GET", gw_b.url + "/mcp",
                                                    headers={**h, "last-event-id": seen[0]["id"]}) as s:
            assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        assert not re.search(r"^ai_mcp_resumed_streams_total [1-9]", gw_b.metrics(), re.M), gw_b.metrics()
        assert re.search(r'ai_mcp_event_log_errors_total\{op="append"\} 1$', gw_a.metrics(), re.M), gw_a.metrics()
    finally:
        redis.stop()


def test_a_get_stream_left_before_any_event_is_let_go_at_once(mcp_servers, gateway_factory):
    redis = Redis()
    try:
        server = mcp_servers("r1")
        gw = gateway_factory(mcp_config(server.url, plugin_extra=event_log(redis.port)))
        h = open_session(gw.url + "/mcp")
        with httpx.Client(timeout=5) as c, c.stream("GET", gw.url + "/mcp", headers=h) as s:
            assert s.status_code == 200
        # No id was handed out, so nothing can resume that stream: the gateway
        # does not hold the server's GET stream for the log's ttl (60 s), and
        # the client's new GET stream is not refused by the server (409).
        deadline, statuses = time.monotonic() + 5, []
        while time.monotonic() < deadline:
            with httpx.Client(timeout=5) as c, c.stream("GET", gw.url + "/mcp", headers=h) as s:
                statuses.append(s.status_code)
                if s.status_code == 200:
                    break
            time.sleep(0.2)
        assert statuses[-1] == 200, statuses
    finally:
        redis.stop()


def test_a_quiet_stream_keeps_its_log_past_the_ttl(mcp_servers, gateway_factory):
    redis = Redis()
    try:
        server = mcp_servers("r1")
        config = mcp_config(server.url, plugin_extra=event_log(redis.port).replace("ttl = 60", "ttl = 1"))
        gw_a, gw_b = gateway_factory(config, name="gw-a"), gateway_factory(config, name="gw-b")
        h = open_session(gw_a.url + "/mcp")
        slow = count_call(2)
        slow["params"]["arguments"]["pause"] = 2.5
        with httpx.Client(timeout=15) as c, c.stream("POST", gw_a.url + "/mcp", json=slow, headers=h) as r:
            # The line iterator is kept: dropping it would close the connection.
            first, lines = {}, r.iter_lines()
            for line in lines:
                if line.startswith("id:"):
                    first["id"] = line[3:].strip()
                elif line == "" and first:
                    break
            # 2.5 s without an event on a live stream, ttl 1 s: its log must
            # still be there, and B resumes from it while A still relays.
            time.sleep(1.8)
            got, deadline = [], time.monotonic() + 10
            with httpx.Client(timeout=10) as c2, c2.stream("GET", gw_b.url + "/mcp",
                                                           headers={**h, "last-event-id": first["id"]}) as s:
                # Bounded: a GET the log cannot serve is a server stream that never ends.
                for line in s.iter_lines():
                    got.append(line)
                    if time.monotonic() > deadline or "counted 2" in line:
                        break
            assert [what(e) for e in events(got + [""])] == ["progress 2", "counted 2"], got
        assert re.search(r"^ai_mcp_resumed_streams_total 1$", gw_b.metrics(), re.M), gw_b.metrics()
    finally:
        redis.stop()
