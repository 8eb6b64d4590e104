"""ai-proxy-advanced end to end: weighted balancing, failover across targets and
providers, Retry-After cool-downs, the circuit breaker, and what must never
fail over (client errors, streams that already reached the client)."""

import threading
import time

import httpx
import pytest

from conftest import Mock, chat
from configs import ALICE_KEY, PROVIDER_KEY, poll


def target(url: str, *, provider: str = "openai", model: str = "gpt-4o", weight: int = 1, auth: str | None = None) -> str:
    auth = auth or f'header_name = "Authorization", header_value = "Bearer {PROVIDER_KEY}"'
    return f"""
[[plugins.config.targets]]
route_type = "llm/v1/chat"
weight = {weight}
auth = {{ {auth} }}
logging = {{ log_statistics = true }}
[plugins.config.targets.model]
provider = "{provider}"
name = "{model}"
[plugins.config.targets.model.options]
upstream_url = "{url}"
"""


def advanced(targets: str, balancer: str = "", server: str = "") -> str:
    return f"""{server}
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{ALICE_KEY}" }}]

[[plugins]]
name = "key-auth"
service = "llm"

[[plugins]]
name = "ai-proxy-advanced"
service = "llm"
[plugins.config.balancer]
{balancer}
{targets}
"""


HEADERS = {"apikey": ALICE_KEY}


@pytest.fixture
def mocks():
    started = [Mock() for _ in range(3)]
    yield started
    for m in started:
        if m.proc.poll() is None:
            m.stop()


def post(gw, body=None, **kw):
    return gw.http.post("/chat", json=body or chat(), headers=HEADERS, **kw)


def test_weights_spread_requests_smoothly(mocks, gateway_factory):
    a, b, _ = mocks
    gw = gateway_factory(advanced(target(a.chat_url, weight=3) + target(b.chat_url, model="gpt-4o-mini", weight=1)))
    order = []
    for _ in range(40):
        r = post(gw)
        assert r.status_code == 200
        order.append("A" if r.headers["x-tollgate-llm-model"] == "openai/gpt-4o" else "B")
    assert (len(a.requests()), len(b.requests())) == (30, 10)
    # Smooth weighted round-robin interleaves instead of sending bursts.
    assert "".join(order[:8]) == "AABAAABA"


def test_no_client_sees_an_error_while_targets_die_and_rate_limit(mocks, gateway_factory):
    a, b, c = mocks
    balancer = 'failover_criteria = ["error", "timeout", "http_429", "http_503"]\nmax_fails = 1\nfail_timeout = 60000'
    gw = gateway_factory(advanced(target(a.chat_url) + target(b.chat_url) + target(c.chat_url), balancer))
    statuses, errors = [], []
    stop = threading.Event()

    def load():
        with httpx.Client(base_url=gw.url, timeout=30) as client:
            # Bounded by time, not by count: a fast gateway must still be
            # under load when the targets fail.
            while not stop.is_set():
                try:
                    r = client.post("/chat", json=chat(), headers=HEADERS)
                    statuses.append(r.status_code)
                    if r.status_code != 200:
                        errors.append(r.text)
                except httpx.HTTPError as e:
                    errors.append(repr(e))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    b.behave(status=429, retry_after=30)  # b rate-limits with Retry-After
    b_before = len(b.requests())
    time.sleep(0.3)
    a.proc.kill()  # a dies mid-run
    served_before_death = len(statuses)
    time.sleep(1.0)
    stop.set()
    for w in workers:
        w.join(timeout=30)
    assert len(statuses) > 50
    assert len(statuses) > served_before_death, "load continued after a died"
    assert errors == [], errors[:3]
    # b was rested after its first 429 rather than asked again and again.
    assert len(b.requests()) - b_before <= 4
    lines = gw.access_log(wait_for=len(statuses))
    failed = [l["ai"]["failed_attempts"] for l in lines if l.get("ai", {}).get("failed_attempts")]
    assert failed, "some requests must show the targets that failed before the answer"
    assert any("http_429" in f for attempts in failed for f in attempts)
    assert "ai_target_failovers_total" in gw.metrics()


def test_4mib_request_fails_over_from_anthropic_to_openai(mocks, gateway_factory):
    a, b, _ = mocks
    anthropic = target(
        f"{a.url}/v1/messages",
        provider="anthropic",
        model="claude-3-5-haiku-20241022",
        auth=f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"',
    )
    balancer = 'algorithm = "priority"\nfailover_criteria = ["error", "http_503"]'
    gw = gateway_factory(
        advanced(anthropic.replace("weight = 1", "weight = 10") + target(b.chat_url, weight=1), balancer,
                 server='[server]\nlisten = ["127.0.0.1:@PORT@"]\nadmin_listen = "127.0.0.1:@ADMIN_PORT@"\nmax_request_body_size = 16777216\n')
    )
    a.behave(status=503)
    big = "x" * (4 * 1024 * 1024)
    body = {"messages": [{"role": "user", "content": big + " What is 1+1?"}]}
    r = post(gw, body)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["x-tollgate-llm-model"] == "openai/gpt-4o"
    assert r.json()["choices"][0]["message"]["content"].startswith("mock reply to:")
    (first,) = a.requests()
    (second,) = b.requests()
    # Each provider got the whole request in its own format.
    assert first["path"] == "/v1/messages" and first["headers"]["x-api-key"] == PROVIDER_KEY
    assert second["path"] == "/v1/chat/completions" and second["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert first["body_len"] > 4 * 1024 * 1024 and second["body_len"] > 4 * 1024 * 1024
    (line,) = gw.access_log(wait_for=1)
    assert line["ai"]["failed_attempts"] == ["anthropic/claude-3-5-haiku-20241022: http_503"]


def test_a_stream_that_reached_the_client_is_never_retried(mocks, gateway_factory):
    a, b, _ = mocks
    balancer = 'algorithm = "priority"\nfailover_criteria = ["error", "timeout", "http_502"]'
    gw = gateway_factory(advanced(target(a.chat_url, weight=10) + target(b.chat_url, weight=1), balancer))
    a.behave(fault="reset_mid_stream", chunks=8)
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers=HEADERS) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert '"error"' in text and "[DONE]" not in text
    assert b.requests() == [], "a stream already under way must not be sent again"


def test_client_errors_never_fail_over(mocks, gateway_factory):
    a, b, _ = mocks
    balancer = 'failover_criteria = ["error", "timeout", "http_429", "http_500", "http_503"]'
    gw = gateway_factory(advanced(target(a.chat_url) + target(b.chat_url), balancer))
    r = post(gw, {"messages": "not a list"})
    assert r.status_code == 400
    assert a.requests() == [] and b.requests() == []
    a.behave(status=400)
    b.behave(status=400)
    r = post(gw)
    assert r.status_code == 400
    assert len(a.requests()) + len(b.requests()) == 1, "a provider's 400 is the caller's error, not a reason to retry"


def test_every_target_down_is_a_503_in_openai_shape(mocks, gateway_factory):
    a, b, _ = mocks
    balancer = 'failover_criteria = ["error", "http_503"]\nmax_fails = 1\nfail_timeout = 60000'
    gw = gateway_factory(advanced(target(a.chat_url) + target(b.chat_url), balancer))
    a.behave(status=503)
    b.behave(status=503)
    # First request: both tried, the last answer is relayed.
    r = post(gw)
    assert r.status_code == 503
    # Now both circuits are open: the gateway answers itself, asking no one.
    before = len(a.requests()) + len(b.requests())
    r = post(gw)
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "no_target_available" and PROVIDER_KEY not in r.text
    assert len(a.requests()) + len(b.requests()) == before


def test_circuit_breaker_skips_a_failing_target(mocks, gateway_factory):
    a, b, _ = mocks
    balancer = 'failover_criteria = ["error", "http_500"]\nmax_fails = 2\nfail_timeout = 60000'
    gw = gateway_factory(advanced(target(a.chat_url) + target(b.chat_url), balancer))
    a.behave(status=500)
    for _ in range(10):
        assert post(gw).status_code == 200
    # Two failures open a's circuit; after that only b is asked.
    assert len(a.requests()) == 2
    assert len(b.requests()) == 10


def test_target_health_shows_in_metrics_and_status(mocks, gateway_factory):
    a, b, _ = mocks
    balancer = 'failover_criteria = ["error", "http_500"]\nmax_fails = 1\nfail_timeout = 60000'
    gw = gateway_factory(advanced(target(a.chat_url) + target(b.chat_url, model="gpt-4o-mini"), balancer))
    a.behave(status=500)
    for _ in range(3):
        assert post(gw).status_code == 200
    metrics = gw.metrics()
    assert 'ai_target_circuit_open{scope="r=/s=llm/c=",target="openai/gpt-4o",index="0"} 1' in metrics
    assert 'ai_target_healthy{scope="r=/s=llm/c=",target="openai/gpt-4o-mini",index="1"} 1' in metrics
    assert 'ai_target_failovers_total{reason="http_500",target="openai/gpt-4o"} 1' in metrics
    status = httpx.get(f"{gw.admin_url}/status").json()
    by_target = {t["target"]: t for t in status["targets"]}
    assert by_target["openai/gpt-4o"]["circuit_open"] is True
    assert by_target["openai/gpt-4o-mini"]["successes"] == 3


def test_circuit_state_survives_a_reload_that_keeps_the_plugin(mocks, gateway_factory):
    import signal

    a, b, _ = mocks
    balancer = 'failover_criteria = ["error", "http_500"]\nmax_fails = 1\nfail_timeout = 60000'
    gw = gateway_factory(advanced(target(a.chat_url) + target(b.chat_url, model="gpt-4o-mini"), balancer))
    a.behave(status=500)
    assert post(gw).status_code == 200  # a fails once: its circuit opens
    a.reset()
    # An unrelated change (a new consumer) reloads the config...
    gw.config_path.write_text(gw.config_path.read_text() + '\n[[consumers]]\nusername = "carol"\n')
    gw.proc.send_signal(signal.SIGHUP)
    reloaded = 'tollgate_config_reloads_total{result="success"} 1'
    assert poll(lambda: reloaded in gw.metrics()), "the reload did not happen"
    # ...and a stays out: its open circuit was kept.
    for _ in range(4):
        assert post(gw).status_code == 200
    assert a.requests() == []
