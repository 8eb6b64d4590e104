"""What operators see: Prometheus metrics, admin health endpoints, and the JSON
access log. Every gateway is a fresh process, so counters start at zero and the
numbers below are exact."""

import hashlib
import json
import re
import signal
import subprocess
import time

import httpx

from conftest import chat
from configs import ALICE_KEY, BOB_KEY, PROVIDER_KEY, llm_config

AUTH = {"apikey": ALICE_KEY}
COSTS = "input_cost = 2.5\noutput_cost = 10"

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def value(text: str, name: str, **labels) -> float | None:
    """Sum of the samples of `name` whose labels include `labels` (None when there is none)."""
    found = [v for n, l, v in samples(text) if n == name and all(l.get(k) == w for k, w in labels.items())]
    return sum(found) if found else None


def test_metrics_count_requests_tokens_and_latency(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    usages = []
    for _ in range(2):
        r = gw.http.post("/chat", json=chat(), headers=AUTH)
        assert r.status_code == 200
        usages.append(r.json()["usage"])
    assert gw.http.post("/chat", json=chat(), headers={"apikey": "wrong"}).status_code == 401
    assert gw.http.post("/elsewhere", json=chat()).status_code == 404
    gw.access_log(wait_for=4)  # all four requests are through their logging phase
    m = gw.metrics()

    assert value(m, "http_requests_total", route="chat", service="llm", consumer="alice", code="200") == 2
    assert value(m, "http_requests_total", route="chat", code="401") == 1
    assert value(m, "http_requests_total", route="", code="404") == 1
    assert value(m, "ai_llm_requests_total", ai_provider="openai", ai_model="gpt-4o", consumer="alice",
                 request_mode="non-stream", code="200") == 2
    for kind in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert value(m, "ai_llm_tokens_total", ai_provider="openai", consumer="alice",
                     token_type=kind) == sum(u[kind] for u in usages), kind
    assert value(m, "ai_llm_provider_latency_ms_count", request_mode="non-stream") == 2
    assert value(m, "ai_llm_provider_latency_ms_bucket", le="+Inf") == 2
    # Refused requests never reached a provider: no LLM request was counted for them.
    assert value(m, "ai_llm_requests_total") == 2
    # No prices configured: gpt-4o is priced from the shipped table ($2.50 in, $10 out per million).
    shipped = sum(u["prompt_tokens"] * 2.5 + u["completion_tokens"] * 10 for u in usages) / 1e6
    assert abs(value(m, "ai_llm_cost_total", ai_model="gpt-4o", consumer="alice") - shipped) < 1e-12
    assert value(m, "ai_llm_time_per_output_token_ms_count", ai_provider="openai", consumer="alice") == 2
    assert value(m, "tollgate_build_info") == 1


def test_promtool_accepts_the_exposition_after_traffic(mock, gateway_factory):
    """`promtool check metrics` (Prometheus's own linter) passes on /metrics once
    every family has samples: answers, streams, refusals, limits and reloads."""
    gw = gateway_factory(llm_config(mock, options=COSTS, extra="""
[[plugins]]
name = "ai-rate-limiting-advanced"
service = "llm"
[plugins.config]
llm_providers = [{ name = "openai", window_size = [60], limit = [1] }]
"""))
    assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 200
    assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 429
    assert gw.http.post("/chat", json=chat(), headers={"apikey": BOB_KEY}).status_code == 200
    r = gw.http.post("/chat", json={**chat(), "stream": True}, headers={"apikey": BOB_KEY})
    assert r.status_code in (200, 429)
    assert gw.http.post("/chat", json=chat(), headers={"apikey": "wrong"}).status_code == 401
    gw.config_path.write_text(gw.config_path.read_text() + "\n[[[ not toml\n")
    gw.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while 'tollgate_config_reloads_total{result="failure"}' not in gw.metrics():
        assert time.monotonic() < deadline, "the bad reload was never counted"
        time.sleep(0.02)
    gw.access_log(wait_for=5)
    exposition = gw.metrics()
    out = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True)
    # Exit 1 is a parse error; 3 is lint problems, listed one per line. The only
    # one allowed is the `_ms` unit of the millisecond families: the names follow
    # Kong's (ai_llm_provider_latency_ms...) so that Kong's dashboards work as they are.
    assert out.returncode in (0, 3), out.stdout + out.stderr
    problems = [l for l in (out.stdout + out.stderr).splitlines() if l.strip()]
    kong_ms = {name for name in re.findall(r"^# TYPE (\S+_ms) (?:histogram|gauge)$", exposition, re.M)}
    for p in problems:
        name, _, what = p.partition(" ")
        assert name in kong_ms and what == "metric names should not contain abbreviated units", p
    # The linter ran on the full set, not on an empty page.
    for family in ("http_requests_total", "ai_llm_tokens_total", "ai_llm_cost_total",
                   "ai_llm_provider_latency_ms_bucket", "tollgate_config_reloads_total", "tollgate_build_info"):
        assert value(exposition, family) is not None, family


def test_cost_follows_the_targets_prices(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, options=COSTS))
    mock.behave(completion_tokens=1000)
    r = gw.http.post("/chat", json=chat("x" * 4000), headers=AUTH)
    usage = r.json()["usage"]
    expected = (usage["prompt_tokens"] * 2.5 + usage["completion_tokens"] * 10) / 1_000_000
    (line,) = gw.access_log(wait_for=1)
    assert abs(line["ai"]["cost"] - expected) < 1e-12
    got = value(gw.metrics(), "ai_llm_cost_total", ai_provider="openai", ai_model="gpt-4o", consumer="alice")
    assert got is not None and abs(got - expected) < 1e-12


def test_stream_metrics_have_time_to_first_token(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers=AUTH) as r:
        r.read()
    gw.access_log(wait_for=1)
    m = gw.metrics()
    assert value(m, "ai_llm_requests_total", request_mode="stream", code="200") == 1
    assert value(m, "ai_llm_time_to_first_token_ms_count", consumer="alice") == 1
    # The usage the gateway asked for (and dropped from the client's stream) is counted.
    assert value(m, "ai_llm_tokens_total", token_type="completion_tokens") == 8


def test_admin_endpoints(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    for path in ("/health", "/ready"):
        r = httpx.get(gw.admin_url + path, timeout=5)
        assert r.status_code == 200, path
    r = httpx.get(gw.admin_url + "/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    status = httpx.get(gw.admin_url + "/status", timeout=5).json()
    assert status["config"]["digest"] == hashlib.sha256(gw.config_path.read_bytes()).hexdigest()
    assert httpx.get(gw.admin_url + "/nope", timeout=5).status_code == 404
    # The admin endpoints are not on the proxy port.
    assert gw.http.get("/metrics").status_code == 404


def test_access_log_line_per_request(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, options=COSTS))
    r = gw.http.post("/chat", json=chat(), headers={**AUTH, "x-request-id": "log-me-1"})
    body = r.json()
    gw.http.post("/chat", json=chat(), headers={"apikey": BOB_KEY})
    gw.http.post("/chat", json=chat())
    ok, bob, anon = gw.access_log(wait_for=3)

    assert ok["request_id"] == "log-me-1"
    assert (ok["consumer"], ok["route"], ok["service"], ok["status"]) == ("alice", "chat", "llm", 200)
    assert (ok["method"], ok["path"]) == ("POST", "/chat")
    assert isinstance(ok["latency_ms"], (int, float)) and ok["latency_ms"] >= 0
    ai = ok["ai"]
    assert ai["provider"] == "openai" and ai["target"] == "openai/gpt-4o"
    assert ai["response_model"] == body["model"]
    assert {k: ai["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")} == body["usage"]
    assert ai["usage"]["estimated"] is False
    assert bob["consumer"] == "bob" and bob["status"] == 200
    assert anon["consumer"] == "" and anon["status"] == 401
    assert "ai" not in anon


def test_without_log_statistics_the_log_has_no_usage(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, logging="log_statistics = false"))
    assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 200
    (line,) = gw.access_log(wait_for=1)
    assert line["ai"]["provider"] == "openai"
    assert "usage" not in line["ai"] and "response_model" not in line["ai"]
    # Metrics still count tokens.
    assert value(gw.metrics(), "ai_llm_tokens_total", token_type="total_tokens") > 0


def test_log_path_never_has_the_query_string(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    assert gw.http.post(f"/chat?apikey={ALICE_KEY}&debug=1", json=chat()).status_code == 200
    assert gw.http.post("/chat?apikey=some-wrong-key", json=chat()).status_code == 401
    ok, refused = gw.access_log(wait_for=2)
    assert ok["path"] == "/chat" and ok["consumer"] == "alice"
    assert refused["path"] == "/chat" and refused["status"] == 401
    text = gw.log_path.read_text()
    assert ALICE_KEY not in text
    assert "some-wrong-key" not in text
    assert "debug=1" not in text


def test_log_payloads_puts_request_and_answer_in_the_access_log(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock, logging="log_statistics = true, log_payloads = true"))
    r = gw.http.post("/chat", json=chat("payload please"), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200
    with gw.http.stream("POST", "/chat", json=chat("stream please", stream=True), headers={"apikey": ALICE_KEY}) as s:
        streamed = "".join(s.iter_text())
    plain, stream = gw.access_log(wait_for=2)
    assert "payload please" in plain["ai"]["payload"]["request"]
    assert plain["ai"]["payload"]["response"] == r.text
    assert stream["ai"]["payload"]["response"] == streamed
    assert plain["ai"]["payload"]["truncated"] is False
    # The caller's key and the provider's never show.
    assert ALICE_KEY not in json.dumps(plain) and PROVIDER_KEY not in json.dumps(plain)


def test_payload_redact_fields_hide_values_in_logged_requests_answers_and_streams(mock, gateway_factory):
    from configs import server_table

    gw = gateway_factory(llm_config(mock, logging="log_statistics = true, log_payloads = true",
                                    server=server_table(payload_redact_fields=["user", "id"])))
    body = chat("redact me", user="customer-secret-42")
    r = gw.http.post("/chat", json=body, headers={"apikey": ALICE_KEY})
    assert r.status_code == 200 and r.json()["id"]
    with gw.http.stream("POST", "/chat", json={**body, "stream": True}, headers={"apikey": ALICE_KEY}) as s:
        streamed = "".join(s.iter_text())
    plain, stream = gw.access_log(wait_for=2)
    # The provider still got the field: redaction is for the log only.
    assert all(q["body"].get("user") == "customer-secret-42" for q in mock.requests())
    for line in (plain, stream):
        text = json.dumps(line)
        assert "customer-secret-42" not in text
        assert json.loads(line["ai"]["payload"]["request"])["user"] == "[REDACTED]"
        assert "redact me" in line["ai"]["payload"]["request"]
    assert r.json()["id"] not in json.dumps(plain)
    assert json.loads(plain["ai"]["payload"]["response"])["id"] == "[REDACTED]"
    first_chunk_id = json.loads(streamed.split("data: ", 2)[1].split("\n")[0])["id"]
    assert first_chunk_id not in json.dumps(stream)
    assert '"id":"[REDACTED]"' in stream["ai"]["payload"]["response"]


def test_payloads_are_not_logged_by_default(mock, gateway_factory):
    gw = gateway_factory(llm_config(mock))
    assert gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY}).status_code == 200
    (line,) = gw.access_log(wait_for=1)
    assert "payload" not in line["ai"]
