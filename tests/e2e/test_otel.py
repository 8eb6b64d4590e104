"""The opentelemetry plugin: spans exported over OTLP/HTTP JSON to a loopback
collector, with the W3C trace context kept from the caller and passed to the
provider, GenAI attributes on provider calls, sampling, and a dead collector
that costs requests nothing."""

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from conftest import Mock, bin_dir, chat
from configs import ALICE_KEY, PROVIDER_KEY, llm_config, poll
from test_failover import advanced, mocks, target  # noqa: F401 (mocks is a fixture)

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
AUTH = {"apikey": ALICE_KEY}


class Collector:
    """Records every OTLP/HTTP export (path, headers, JSON body)."""

    def __init__(self, status: int = 200):
        self.exports = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                collector.exports.append({"path": self.path, "headers": dict(self.headers.items()),
                                          "body": json.loads(body)})
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/traces"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def spans(self) -> list[dict]:
        out = []
        for e in self.exports:
            for rs in e["body"]["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    out.extend(ss["spans"])
        return out

    def wait_spans(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.spans()) < n:
            assert time.monotonic() < deadline, f"{len(self.spans())} spans exported, waited for {n}"
            time.sleep(0.02)
        return self.spans()

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.stop()


def otel_plugin(endpoint: str, extra: str = "") -> str:
    return f"""
[[plugins]]
name = "opentelemetry"
[plugins.config]
traces_endpoint = "{endpoint}"
headers = {{ "x-collector-key" = "collector-secret" }}
resource_attributes = {{ "service.name" = "edge-gateway", "deployment.environment" = "e2e" }}
http_response_header_for_traceid = "x-trace-id"
{extra}
[plugins.config.queue]
max_coalescing_delay = 0.05
"""


def attrs(span: dict) -> dict:
    out = {}
    for a in span["attributes"]:
        (kind, value), = a["value"].items()
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out


def test_a_chat_is_one_server_span_and_one_genai_client_span_in_the_callers_trace(mock, gateway_factory, collector):
    gw = gateway_factory(llm_config(mock, options="input_cost = 2.5\noutput_cost = 10", extra=otel_plugin(collector.url)))
    r = gw.http.post("/chat", json=chat(max_tokens=50), headers={**AUTH, "traceparent": CALLER, "tracestate": "vendor=x"})
    assert r.status_code == 200
    usage = r.json()["usage"]
    assert r.headers["x-trace-id"] == CALLER_TRACE

    server, client = sorted(collector.wait_spans(2), key=lambda s: s["kind"])
    # The server span continues the caller's trace; the provider call is its child.
    assert server["traceId"] == client["traceId"] == CALLER_TRACE
    assert server["parentSpanId"] == CALLER_SPAN
    assert client["parentSpanId"] == server["spanId"]
    assert (server["kind"], client["kind"]) == (2, 3)
    assert server["name"] == "POST chat"
    assert client["name"] == "chat gpt-4o"
    # The provider saw the gateway's call span as its parent, and the caller's tracestate.
    (seen,) = mock.requests()
    assert seen["headers"]["traceparent"] == f"00-{CALLER_TRACE}-{client['spanId']}-01"
    assert seen["headers"]["tracestate"] == "vendor=x"

    a = attrs(client)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.response.model"]
    assert a["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert a["http.response.status_code"] == 200
    assert a["server.address"] == "127.0.0.1"
    expected_cost = (usage["prompt_tokens"] * 2.5 + usage["completion_tokens"] * 10) / 1e6
    assert abs(a["tollgate.cost"] - expected_cost) < 1e-9
    s = attrs(server)
    assert s["http.request.method"] == "POST" and s["url.path"] == "/chat"
    assert s["http.response.status_code"] == 200
    assert s["tollgate.consumer"] == "alice" and s["tollgate.route"] == "chat"
    assert s["tollgate.request_id"] == r.headers["x-request-id"]
    assert int(server["startTimeUnixNano"]) <= int(client["startTimeUnixNano"])
    assert int(client["endTimeUnixNano"]) <= int(server["endTimeUnixNano"])

    (export,) = collector.exports
    assert export["path"] == "/v1/traces"
    assert export["headers"]["content-type"] == "application/json"
    assert export["headers"]["x-collector-key"] == "collector-secret"
    resource = {a["key"]: a["value"]["stringValue"] for a in export["body"]["resourceSpans"][0]["resource"]["attributes"]}
    assert resource["service.name"] == "edge-gateway" and resource["deployment.environment"] == "e2e"
    assert poll(lambda: 'tollgate_otlp_spans_total{result="exported"} 2' in gw.metrics())
    # The collector's key is a secret: never in the gateway's own output.
    assert "collector-secret" not in gw.stderr() + json.dumps(gw.access_log()) + gw.metrics()


def test_a_failed_over_attempt_is_its_own_span_with_the_reason(mocks, gateway_factory, collector):
    a, b, _ = mocks
    balancer = 'algorithm = "priority"\nfailover_criteria = ["error", "http_503"]'
    targets = target(a.chat_url, weight=10) + target(b.chat_url, model="gpt-4o-mini", weight=1)
    gw = gateway_factory(advanced(targets, balancer) + otel_plugin(collector.url))
    a.behave(status=503)
    r = gw.http.post("/chat", json=chat(), headers=AUTH)
    assert r.status_code == 200
    spans = collector.wait_spans(3)
    server = next(s for s in spans if s["kind"] == 2)
    first, second = sorted((s for s in spans if s["kind"] == 3), key=lambda s: int(s["startTimeUnixNano"]))
    assert first["parentSpanId"] == second["parentSpanId"] == server["spanId"]
    assert first["status"] == {"code": 2, "message": "http_503"}
    assert attrs(first)["error.type"] == "http_503"
    assert attrs(first)["http.response.status_code"] == 503
    assert second["status"] == {} and attrs(second)["gen_ai.request.model"] == "gpt-4o-mini"
    # Each provider saw its own call span as the parent.
    assert a.requests()[0]["headers"]["traceparent"].split("-")[2] == first["spanId"]
    assert b.requests()[0]["headers"]["traceparent"].split("-")[2] == second["spanId"]
    # A trace that starts at the gateway gets a fresh id, returned to the caller.
    assert r.headers["x-trace-id"] == server["traceId"] and "parentSpanId" not in server


def test_streams_carry_time_to_first_token(mock, gateway_factory, collector):
    gw = gateway_factory(llm_config(mock, extra=otel_plugin(collector.url)))
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers=AUTH) as r:
        assert r.status_code == 200
        r.read()
    client = next(s for s in collector.wait_spans(2) if s["kind"] == 3)
    a = attrs(client)
    assert a["tollgate.request_mode"] == "stream"
    assert a["tollgate.time_to_first_token_ms"] > 0
    assert a["gen_ai.usage.output_tokens"] > 0


def test_sampling_follows_the_caller_and_the_rate(mock, gateway_factory, collector):
    gw = gateway_factory(llm_config(mock, extra=otel_plugin(collector.url, "sampling_rate = 0.0")))
    # Traces that start here: none at rate 0, but the context still goes on, unsampled.
    for _ in range(5):
        assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 200
    unsampled = [q["headers"]["traceparent"] for q in mock.requests()]
    assert all(t.endswith("-00") for t in unsampled) and len({t.split("-")[1] for t in unsampled}) == 5
    # A caller that declined sampling is followed too.
    assert gw.http.post("/chat", json=chat(), headers={**AUTH, "traceparent": CALLER[:-2] + "00"}).status_code == 200
    # A caller that sampled its trace is recorded whatever the rate.
    assert gw.http.post("/chat", json=chat(), headers={**AUTH, "traceparent": CALLER}).status_code == 200
    spans = collector.wait_spans(2)
    time.sleep(0.3)  # nothing else arrives
    assert len(collector.spans()) == 2
    assert {s["traceId"] for s in spans} == {CALLER_TRACE}


def test_a_dead_or_refusing_collector_costs_requests_nothing(mock, gateway_factory):
    refusing = Collector(status=503)
    try:
        for endpoint in ("http://127.0.0.1:9/v1/traces", refusing.url):
            gw = gateway_factory(llm_config(mock, extra=otel_plugin(endpoint)))
            for _ in range(20):
                assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 200
            assert poll(lambda: 'tollgate_otlp_spans_total{result="failed"} 40' in gw.metrics()), gw.metrics()
            # One warning per outage, not one per batch.
            assert gw.stderr().count("opentelemetry: export failed") == 1
            gw.stop()
        assert len(refusing.exports) >= 1
    finally:
        refusing.stop()


def test_the_queue_bound_drops_spans_rather_than_memory(mock, gateway_factory):
    # A collector that never answers holds the exporter; the queue fills at 4 spans.
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
    try:
        extra = 'send_timeout = 3000\n[plugins.config.queue]\nmax_batch_size = 2\nmax_entries = 4\nmax_coalescing_delay = 0.05\n'
        gw = gateway_factory(llm_config(mock, extra=f"""
[[plugins]]
name = "opentelemetry"
[plugins.config]
traces_endpoint = "{endpoint}"
{extra}"""))
        for _ in range(10):
            assert gw.http.post("/chat", json=chat(), headers=AUTH).status_code == 200
        assert poll(lambda: 'tollgate_otlp_spans_total{result="dropped"}' in gw.metrics())
    finally:
        silent.close()


def test_mcp_calls_are_spans_named_by_method_and_tool(gateway_factory, collector):
    from configs import BOB_KEY
    from test_mcp import McpServer, mcp_config, stateless_call, stateless_headers

    server = McpServer("r1")
    try:
        gw = gateway_factory(mcp_config(server.url) + otel_plugin(collector.url))
        for tool, decision in (("echo", "allowed"), ("delete_user", "denied")):
            r = gw.http.post("/mcp", json=stateless_call(tool, {"text": "hi"} if tool == "echo" else {"user_id": "1"}),
                             headers={**stateless_headers("tools/call", tool), "apikey": BOB_KEY, "traceparent": CALLER})
            assert r.status_code == 200
        # The MCP server sees the gateway's span as its parent, not the caller's.
        seen = gw.http.get("/headers", headers={"apikey": BOB_KEY, "traceparent": CALLER}).json()["headers"]
        spans = collector.wait_spans(3)
        by_name = {s["name"]: s for s in spans}
        allowed, denied = by_name["tools/call echo"], by_name["tools/call delete_user"]
        assert attrs(allowed)["mcp.method.name"] == "tools/call"
        assert attrs(allowed)["gen_ai.tool.name"] == "echo"
        assert attrs(allowed)["gen_ai.operation.name"] == "execute_tool"
        assert attrs(allowed)["tollgate.mcp.decision"] == "allowed"
        assert attrs(denied)["tollgate.mcp.decision"] == "denied"
        assert all(s["traceId"] == CALLER_TRACE and s["parentSpanId"] == CALLER_SPAN for s in spans)
        get_span = by_name["GET"]
        assert seen["traceparent"] == f"00-{CALLER_TRACE}-{get_span['spanId']}-01"
    finally:
        server.stop()


@pytest.mark.parametrize("scope, fragment, message", [
    ('service = "llm"\n', 'traces_endpoint = "http://127.0.0.1:4318/v1/traces"', "plugin opentelemetry is global"),
    ("", 'traces_endpoint = "grpc://127.0.0.1:4317"', "must start with http:// or https://"),
    ("", 'traces_endpoint = "http://c/v1/traces"\nsampling_rate = 2.0', "sampling_rate: must be between 0 and 1"),
])
def test_bad_plugin_configs_are_refused_with_the_field(mock, tmp_path, scope, fragment, message):
    conf = tmp_path / "t.toml"
    conf.write_text(llm_config(mock) + f'\n[[plugins]]\nname = "opentelemetry"\n{scope}[plugins.config]\n{fragment}\n')
    out = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(conf)], capture_output=True, text=True)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
