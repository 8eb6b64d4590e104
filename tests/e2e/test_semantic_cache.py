"""ai-semantic-cache end to end: answers served again without any provider
(JSON and streams, in the OpenAI and Anthropic formats, read by the official
SDKs), shared by two replicas through a real redis-server, semantic hits on
a paraphrase, Cache-Control honoured, only deterministic or opted-in
requests cached, hits charged nothing against a token budget, TTL expiry;
and provider prompt caching priced at its own rates in the cost."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import openai
import pytest

from configs import ALICE_KEY, BOB_KEY, PROVIDER_KEY, llm_config, poll
from conftest import chat, free_port
from test_token_limits import Redis

CLAUDE = "claude-sonnet-4-5-20250929"


def cache_plugin(settings: str = "", vectordb: str = 'strategy = "memory"') -> str:
    return f"""
[[plugins]]
name = "ai-semantic-cache"
service = "llm"
[plugins.config]
cache_control = true
{settings}
[plugins.config.vectordb]
{vectordb}
"""


def config(mock, settings: str = "", vectordb: str = 'strategy = "memory"', extra: str = "", **kw) -> str:
    return llm_config(mock, extra=cache_plugin(settings, vectordb) + extra, **kw)


def ask(gw, content: str = "What is 1+1?", key: str = ALICE_KEY, headers: dict | None = None, **extra):
    body = chat(content, **{"temperature": 0, **extra})
    r = gw.http.post("/chat", json=body, headers={"apikey": key, **(headers or {})})
    assert r.status_code == 200, r.text
    return r


def provider_calls(mock, path: str = "/v1/chat/completions") -> int:
    return sum(1 for r in mock.requests() if r["path"] == path)


def status(r) -> str:
    return r.headers.get("x-cache-status")


def redis_call(port: int, *args: str):
    """One Redis command over RESP (no client library): an int, a string or a list of them."""
    import socket

    wire = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(wire.encode())
        f = sock.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b":":
                return int(rest)
            if kind == b"$":
                return None if int(rest) < 0 else f.read(int(rest) + 2)[:-2].decode(errors="replace")
            if kind == b"*":
                return [read() for _ in range(int(rest))]
            return rest.decode()

        return read()


def stored(redis, pattern: str, at_least: int = 1) -> bool:
    """Waits until Redis holds `at_least` keys matching `pattern` (stores run in the background)."""
    return bool(poll(lambda: len(redis_call(redis.port, "KEYS", pattern)) >= at_least))


# ---------- exact mode: JSON and streams ----------

def test_a_second_identical_request_is_a_hit_no_provider_sees(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    first = ask(gw)
    assert status(first) == "Miss"
    second = ask(gw)
    assert status(second) == "Hit"
    assert provider_calls(mock) == 1
    a, b = first.json(), second.json()
    assert b["choices"][0]["message"]["content"] == a["choices"][0]["message"]["content"]
    assert b["object"] == "chat.completion" and b["id"] != a["id"]
    assert len(second.headers["x-cache-key"]) == 64
    assert 0 < int(second.headers["x-cache-ttl"]) <= 300
    assert second.headers["x-tollgate-llm-model"] == first.headers["x-tollgate-llm-model"]
    # Another consumer has its own entries (scope = "consumer", the default).
    assert status(ask(gw, key=BOB_KEY)) == "Miss"
    assert provider_calls(mock) == 2
    # Counted in the ai_llm_* metrics with Kong's cache_status label; the log says so too.
    m = gw.metrics()
    hits = [l for l in m.splitlines() if l.startswith("ai_llm_requests_total{") and 'cache_status="hit"' in l]
    misses = [l for l in m.splitlines() if l.startswith("ai_llm_requests_total{") and 'cache_status="miss"' in l]
    assert hits and hits[0].endswith(" 1"), m
    assert 'code="200"' in hits[0], "a hit is the provider's 200 served again"
    assert sum(int(float(l.rsplit(" ", 1)[1])) for l in misses) == 2
    log = gw.access_log(wait_for=3)
    assert [l["ai"]["cache_status"] for l in log] == ["miss", "hit", "miss"]
    assert "cost" not in log[1]["ai"], "a hit costs nothing"


def test_a_streamed_hit_is_a_valid_stream_for_the_openai_sdk(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    client = openai.OpenAI(base_url=gw.url, api_key="unused", default_headers={"apikey": ALICE_KEY}, max_retries=0)

    def streamed():
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", temperature=0, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Stream me something"}], extra_headers={},
        )
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = [c.usage for c in chunks if c.usage]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        return raw.headers.get("x-cache-status"), text, usage, finish

    (s1, text1, usage1, finish1), (s2, text2, usage2, finish2) = streamed(), streamed()
    assert (s1, s2) == ("Miss", "Hit")
    assert text1 and text2 == text1
    assert finish2 == finish1 == ["stop"]
    assert usage2 and usage2[0].total_tokens == usage1[0].total_tokens
    assert provider_calls(mock) == 1
    # The entry is provider-neutral: the same request as JSON is a hit too.
    r = gw.http.post("/chat", headers={"apikey": ALICE_KEY},
                     json={"model": "gpt-4o", "temperature": 0, "messages": [{"role": "user", "content": "Stream me something"}]})
    assert status(r) == "Hit" and r.json()["choices"][0]["message"]["content"] == text1
    assert provider_calls(mock) == 1


def test_a_cut_stream_is_not_stored(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    mock.behave(fault="reset_mid_stream", times=1)
    body = chat("Cut me", temperature=0, stream=True)
    with gw.http.stream("POST", "/chat", json=body, headers={"apikey": ALICE_KEY}) as r:
        assert r.headers["x-cache-status"] == "Miss"
        r.read()
    r = gw.http.post("/chat", json=chat("Cut me", temperature=0, stream=True), headers={"apikey": ALICE_KEY})
    assert status(r) == "Miss", "nothing was stored from the broken stream"
    assert provider_calls(mock) == 2


def anthropic_config(mock) -> str:
    return llm_config(
        mock, provider="anthropic", model_name=CLAUDE, llm_format="anthropic", upstream_url=f"{mock.url}/v1/messages",
        auth=f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"',
        key_auth='key_names = ["apikey", "x-api-key", "authorization"]', extra=cache_plugin(), path="/anthropic",
        methods='["POST", "GET"]',
    )


def test_a_streamed_hit_is_a_valid_stream_for_the_anthropic_sdk(mock, gateway_factory):
    gw = gateway_factory(anthropic_config(mock))
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=ALICE_KEY, max_retries=0, timeout=30)

    def streamed():
        with client.messages.stream(model=CLAUDE, max_tokens=256, extra_body={"temperature": 0}, system="Be brief",
                                    messages=[{"role": "user", "content": "Name a colour"}]) as s:
            msg = s.get_final_message()
            return s.response.headers.get("x-cache-status"), msg

    (s1, m1), (s2, m2) = streamed(), streamed()
    assert (s1, s2) == ("Miss", "Hit")
    assert [b.text for b in m2.content] == [b.text for b in m1.content] and m1.content[0].text
    assert m2.stop_reason == m1.stop_reason == "end_turn"
    assert m2.usage.output_tokens == m1.usage.output_tokens
    assert provider_calls(mock, "/v1/messages") == 1
    # And as JSON through the SDK.
    msg = client.messages.create(model=CLAUDE, max_tokens=256, extra_body={"temperature": 0}, system="Be brief",
                                 messages=[{"role": "user", "content": "Name a colour"}])
    assert msg.content[0].text == m1.content[0].text
    assert provider_calls(mock, "/v1/messages") == 1


# ---------- two replicas sharing Redis ----------

@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


def test_a_miss_on_one_replica_is_a_hit_on_another_through_redis(mock, gateway_factory, redis):
    vectordb = f'strategy = "redis"\nredis = {{ host = "127.0.0.1", port = {redis.port}, timeout = 500 }}'
    a = gateway_factory(config(mock, vectordb=vectordb), name="a")
    b = gateway_factory(config(mock, vectordb=vectordb), name="b")
    first = ask(a, "Shared question")
    assert status(first) == "Miss"
    # Redis is written in the background: wait for the entry.
    assert stored(redis, "tollgate:cache:e:*")
    second = ask(b, "Shared question")
    assert status(second) == "Hit"
    assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    assert provider_calls(mock) == 1
    # Streamed on A, from the same entry.
    r = a.http.post("/chat", json=chat("Shared question", temperature=0, stream=True), headers={"apikey": ALICE_KEY})
    assert status(r) == "Hit" and r.text.rstrip().endswith("data: [DONE]")
    assert provider_calls(mock) == 1


# ---------- semantic mode ----------

class Embeddings:
    """An OpenAI embeddings endpoint whose vectors the test chooses: a text's
    vector by its first word of `VECTORS` found in it (else an unrelated one)."""

    VECTORS = {
        "capital": [1.0, 0.0, 0.0],
        "capitol": [0.97, 0.24, 0.0],  # a paraphrase: cosine 0.97
        "haiku": [0.0, 0.0, 1.0],
        "nothing": [0.0, 0.0, 0.0],  # near nothing (no cosine): always a new entry
    }

    def __init__(self):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["content-length"])))
                seen.append(req["input"])
                data = [{"object": "embedding", "index": i, "embedding": Embeddings.vector(t)}
                        for i, t in enumerate(req["input"])]
                body = json.dumps({"object": "list", "data": data, "model": req.get("model"),
                                   "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/embeddings"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def vector(text: str) -> list:
        for word, v in Embeddings.VECTORS.items():
            if word in text.lower():
                return v
        return [0.0, 1.0, 0.0]


@pytest.fixture
def embeddings():
    e = Embeddings()
    yield e
    e.httpd.shutdown()


def semantic(embeddings) -> str:
    return f"""message_countback = 1
ignore_system_prompts = true
[plugins.config.embeddings]
auth = {{ header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}" }}
model = {{ provider = "openai", name = "text-embedding-3-small", options = {{ upstream_url = "{embeddings.url}" }} }}"""


def test_a_paraphrase_within_the_distance_is_a_hit_an_unrelated_prompt_a_miss(mock, gateway_factory, embeddings):
    gw = gateway_factory(config(mock, settings=semantic(embeddings), vectordb='strategy = "memory"\nthreshold = 0.1'))
    first = ask(gw, "What is the capital of France?")
    assert status(first) == "Miss"
    para = ask(gw, "Which city is France's capitol?")
    assert status(para) == "Hit"
    assert para.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    other = ask(gw, "Write a haiku about autumn")
    assert status(other) == "Miss"
    assert provider_calls(mock) == 2
    # The last user message alone was embedded (the system prompt ignored), once per request.
    assert embeddings.seen == [["What is the capital of France?"], ["Which city is France's capitol?"],
                               ["Write a haiku about autumn"]]


def test_beyond_the_distance_a_paraphrase_is_a_miss(mock, gateway_factory, embeddings):
    gw = gateway_factory(config(mock, settings=semantic(embeddings), vectordb='strategy = "memory"\nthreshold = 0.01'))
    assert status(ask(gw, "What is the capital of France?")) == "Miss"
    assert status(ask(gw, "Which city is France's capitol?")) == "Miss"
    assert provider_calls(mock) == 2


# ---------- Cache-Control, determinism, tool results ----------

def test_cache_control_no_store_bypasses_and_no_cache_refreshes(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    assert status(ask(gw, headers={"cache-control": "no-store"})) == "Bypass"
    assert status(ask(gw)) == "Miss", "no-store stored nothing"
    assert status(ask(gw)) == "Hit"
    assert status(ask(gw, headers={"cache-control": "no-cache"})) == "Refresh"
    assert provider_calls(mock) == 3, "a refresh asks the provider"
    assert status(ask(gw)) == "Hit"
    assert provider_calls(mock) == 3


def test_cache_control_is_ignored_unless_configured(mock, gateway_factory):
    gw = gateway_factory(config(mock).replace("cache_control = true", "cache_control = false"))
    assert status(ask(gw)) == "Miss"
    assert status(ask(gw, headers={"cache-control": "no-store"})) == "Hit"


def test_nondeterministic_requests_are_not_cached_unless_opted_in(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    assert status(ask(gw, temperature=0.7)) == "Bypass"
    assert status(ask(gw, temperature=0.7)) == "Bypass"
    assert provider_calls(mock) == 2
    on = {"x-tollgate-cache": "on"}
    assert status(ask(gw, headers=on, temperature=0.7)) == "Miss"
    assert status(ask(gw, headers=on, temperature=0.7)) == "Hit"
    assert status(ask(gw, headers={"x-tollgate-cache": "off"})) == "Bypass"
    assert provider_calls(mock) == 4
    everything = gateway_factory(config(mock, settings="cache_nondeterministic = true"), name="all")
    assert status(ask(everything, "warm", temperature=0.9)) == "Miss"
    assert status(ask(everything, "warm", temperature=0.9)) == "Hit"


def test_a_tool_result_last_is_not_cached(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    for _ in range(2):
        r = gw.http.post("/chat", json={"messages": messages, "temperature": 0}, headers={"apikey": ALICE_KEY})
        assert r.status_code == 200 and status(r) == "Bypass"
    assert provider_calls(mock) == 2


# ---------- token budgets ----------

def test_a_hit_is_charged_zero_tokens(mock, gateway_factory):
    limit = """
[[plugins]]
name = "ai-rate-limiting-advanced"
service = "llm"
[plugins.config]
llm_providers = [{ name = "openai", window_size = [60], limit = [100000] }]
"""
    gw = gateway_factory(config(mock, extra=limit))
    first = ask(gw)
    used = first.json()["usage"]["total_tokens"]
    assert used > 0
    time.sleep(0.2)  # the miss is settled when its answer is logged
    hits = [ask(gw) for _ in range(3)]
    assert [status(h) for h in hits] == ["Hit"] * 3
    remaining = [int(h.headers["x-ai-ratelimit-remaining-60-openai"]) for h in hits]
    assert remaining == [100000 - used] * 3, "hits charged nothing"
    # A new miss is charged again.
    other = ask(gw, "Something else")
    assert status(other) == "Miss"
    assert int(other.headers["x-ai-ratelimit-remaining-60-openai"]) < 100000 - used


# ---------- TTL ----------

def test_an_expired_entry_is_a_miss_again(mock, gateway_factory):
    gw = gateway_factory(config(mock, settings="cache_ttl = 1"))
    assert status(ask(gw)) == "Miss"
    assert status(ask(gw)) == "Hit"
    time.sleep(1.2)
    assert status(ask(gw)) == "Miss"
    assert provider_calls(mock) == 2


# ---------- provider prompt caching: cost ----------

def test_cache_reads_and_writes_are_priced_at_their_own_rates(mock, gateway_factory):
    """Anthropic's prompt cache through the gateway: the second request reads
    what the first wrote; the cost uses 0.1x the input price for reads and
    1.25x for writes (Anthropic's ratios, the defaults) unless configured."""
    cfg = llm_config(
        mock, provider="anthropic", model_name=CLAUDE, llm_format="anthropic", upstream_url=f"{mock.url}/v1/messages",
        auth=f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"', key_auth='key_names = ["x-api-key", "authorization"]',
        options="input_cost = 3.0\noutput_cost = 15.0", path="/anthropic",
    )
    gw = gateway_factory(cfg)
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=ALICE_KEY, max_retries=0, timeout=30)
    system = [{"type": "text", "text": "You are a careful assistant. " * 50, "cache_control": {"type": "ephemeral"}}]
    for q in ("First question?", "Second question?"):
        client.messages.create(model=CLAUDE, max_tokens=64, system=system, messages=[{"role": "user", "content": q}])
    write, read = gw.access_log(wait_for=2)[:2]
    for line, kind in ((write, "cache_write_tokens"), (read, "cached_tokens")):
        u = line["ai"]["usage"]
        assert u[kind] > 0, u
        plain = u["prompt_tokens"] - u["cached_tokens"] - u.get("cache_write_tokens", 0)
        expected = (plain * 3.0 + u["cached_tokens"] * 0.3 + u.get("cache_write_tokens", 0) * 3.75
                    + u["completion_tokens"] * 15.0) / 1e6
        assert line["ai"]["cost"] == pytest.approx(expected, rel=1e-9), (u, line["ai"]["cost"])
        all_input = (u["prompt_tokens"] * 3.0 + u["completion_tokens"] * 15.0) / 1e6
        assert (line["ai"]["cost"] < all_input) == (kind == "cached_tokens")
    total = sum(l["ai"]["cost"] for l in (write, read))
    costs = [l for l in gw.metrics().splitlines() if l.startswith("ai_llm_cost_total{")]
    assert sum(float(l.rsplit(" ", 1)[1]) for l in costs) == pytest.approx(total, rel=1e-9)


def test_configured_cache_prices_replace_the_defaults(mock, gateway_factory):
    cfg = llm_config(
        mock, provider="anthropic", model_name=CLAUDE, llm_format="anthropic", upstream_url=f"{mock.url}/v1/messages",
        auth=f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"', key_auth='key_names = ["x-api-key", "authorization"]',
        options="input_cost = 3.0\noutput_cost = 15.0\ncache_read_cost = 1.5\ncache_write_cost = 6.0",
        path="/anthropic",
    )
    gw = gateway_factory(cfg)
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=ALICE_KEY, max_retries=0, timeout=30)
    system = [{"type": "text", "text": "Context. " * 80, "cache_control": {"type": "ephemeral"}}]
    for q in ("One?", "Two?"):
        client.messages.create(model=CLAUDE, max_tokens=64, system=system, messages=[{"role": "user", "content": q}])
    for line in gw.access_log(wait_for=2)[:2]:
        u = line["ai"]["usage"]
        w = u.get("cache_write_tokens", 0)
        plain = u["prompt_tokens"] - u["cached_tokens"] - w
        expected = (plain * 3.0 + u["cached_tokens"] * 1.5 + w * 6.0 + u["completion_tokens"] * 15.0) / 1e6
        assert line["ai"]["cost"] == pytest.approx(expected, rel=1e-9)
    assert gw.access_log()[1]["ai"]["usage"]["cached_tokens"] > 0


def test_semantic_hits_are_shared_through_redis(mock, gateway_factory, embeddings, redis):
    vectordb = f'strategy = "redis"\nthreshold = 0.1\nredis = {{ host = "127.0.0.1", port = {redis.port}, timeout = 500 }}'
    a = gateway_factory(config(mock, settings=semantic(embeddings), vectordb=vectordb), name="a")
    b = gateway_factory(config(mock, settings=semantic(embeddings), vectordb=vectordb), name="b")
    first = ask(a, "What is the capital of France?")
    assert status(first) == "Miss"
    # The entry, then its index (a vectors hash and an expiry ZSET).
    assert stored(redis, "tollgate:cache:v2:*", at_least=2)
    para = ask(b, "Which city is France's capitol?")
    assert status(para) == "Hit"
    assert para.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    assert status(ask(b, "Write a haiku about autumn")) == "Miss"
    assert provider_calls(mock) == 2


# ---------- what semantic entries are kept apart ----------

def test_a_semantic_hit_stays_with_its_consumer(mock, gateway_factory, embeddings):
    gw = gateway_factory(config(mock, settings=semantic(embeddings), vectordb='strategy = "memory"\nthreshold = 0.1'))
    assert status(ask(gw, "What is the capital of France?")) == "Miss"
    assert status(ask(gw, "Which city is France's capitol?", key=BOB_KEY)) == "Miss", "bob's own namespace"
    assert status(ask(gw, "Which city is France's capitol?")) == "Hit"
    assert provider_calls(mock) == 2


def test_a_semantic_request_with_tools_does_not_hit_an_answer_stored_without(mock, gateway_factory, embeddings):
    gw = gateway_factory(config(mock, settings=semantic(embeddings), vectordb='strategy = "memory"\nthreshold = 0.1'))
    assert status(ask(gw, "What is the capital of France?")) == "Miss"
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    assert status(ask(gw, "Which city is France's capitol?", tools=tools)) == "Miss"
    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    assert status(ask(gw, "Which city is France's capitol?", response_format=schema)) == "Miss"
    assert provider_calls(mock) == 3
    # Each is found again with its own tools or format.
    assert status(ask(gw, "capitol city of France, please", tools=tools)) == "Hit"
    assert provider_calls(mock) == 3


def test_a_stream_without_usage_stores_the_providers_usage(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    body = chat("Count for me", temperature=0, stream=True)
    r = gw.http.post("/chat", json=body, headers={"apikey": ALICE_KEY})
    assert status(r) == "Miss" and '"usage"' not in r.text.replace('"usage":null', ""), "the caller asked for none"
    hit = ask(gw, "Count for me")
    assert status(hit) == "Hit"
    u = hit.json().get("usage") or {}
    assert u.get("prompt_tokens", 0) > 0 and u.get("completion_tokens", 0) > 0, hit.json()
    assert provider_calls(mock) == 1


# ---------- Redis: bounded index, Redis down ----------

def test_the_redis_index_drops_expired_vectors_and_keeps_max_entries(mock, gateway_factory, embeddings, redis):
    vectordb = f'strategy = "redis"\nthreshold = 0.1\nredis = {{ host = "127.0.0.1", port = {redis.port}, timeout = 500 }}'
    cfg = config(mock, settings=semantic(embeddings), vectordb=vectordb)
    gw = gateway_factory(cfg.replace("cache_control = true", "cache_control = true\nmax_entries = 3\ncache_ttl = 2"))

    def sizes():
        keys = sorted(redis_call(redis.port, "KEYS", "tollgate:cache:v2:*"))
        return [redis_call(redis.port, "HLEN" if k.endswith(":v") else "ZCARD", k) for k in keys]

    def store(n: int, expect: int):
        assert status(ask(gw, f"nothing {n}")) == "Miss"
        assert poll(lambda: sizes() == [expect, expect]), (n, sizes())

    store(1, 1)
    time.sleep(1.2)
    store(2, 2)
    time.sleep(1.0)
    store(3, 2)  # the first expired: deleted by this store, not kept until the whole index expires
    store(4, 3)
    store(5, 3)  # max_entries: the soonest to expire goes


def redis_down(mock, extra_settings: str = "") -> str:
    vectordb = f'strategy = "redis"\nredis = {{ host = "127.0.0.1", port = {free_port()}, timeout = 300 }}'
    return config(mock, settings=extra_settings, vectordb=vectordb)


def test_redis_down_serves_uncached(mock, gateway_factory):
    gw = gateway_factory(redis_down(mock))
    for _ in range(2):
        r = ask(gw)
        assert status(r) == "Bypass" and r.json()["choices"][0]["message"]["content"]
    assert provider_calls(mock) == 2


def test_redis_down_with_stop_on_failure_refuses(mock, gateway_factory):
    gw = gateway_factory(redis_down(mock, "stop_on_failure = true"))
    r = gw.http.post("/chat", json=chat("What is 1+1?", temperature=0), headers={"apikey": ALICE_KEY})
    assert r.status_code == 500, r.text
    assert status(r) == "Bypass"
    assert r.json()["error"]["code"] == "cache_unavailable", r.text
    assert provider_calls(mock) == 0


def test_replicas_with_other_targets_do_not_share_entries(mock, gateway_factory, redis):
    """Same route names, same Redis: another upstream is another namespace;
    a price is not part of the target, so a repriced replica still shares."""
    vectordb = f'strategy = "redis"\nredis = {{ host = "127.0.0.1", port = {redis.port}, timeout = 500 }}'
    a = gateway_factory(config(mock, vectordb=vectordb), name="a")
    other = config(mock, vectordb=vectordb, upstream_url=f"{mock.url}/v1/chat/completions?deployment=b")
    b = gateway_factory(other, name="b")
    repriced = gateway_factory(config(mock, vectordb=vectordb, options="input_cost = 9.0"), name="c")
    assert status(ask(a, "Whose answer?")) == "Miss"
    assert stored(redis, "tollgate:cache:e:*")
    assert status(ask(b, "Whose answer?")) == "Miss", "another upstream"
    assert status(ask(repriced, "Whose answer?")) == "Hit"
    assert provider_calls(mock) == 2
