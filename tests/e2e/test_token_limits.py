"""ai-rate-limiting-advanced end to end: budgets that hold under concurrency,
shared across gateway replicas through a real redis-server, and a Redis outage
handled as configured."""

import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from configs import llm_config
from conftest import chat, free_port

KEY = "tenant-key"


def config(mock, strategy: str = "local", redis_port: int | None = None,
           limit: int = 10_000, fault_tolerant: bool = True, redis_table: str | None = None) -> str:
    """A 10,000-token budget (by default) for consumer `tenant`; with `redis_port`
    a single Redis node, or any `redis` table's fields in `redis_table`."""
    if redis_port:
        redis_table = f'host = "127.0.0.1", port = {redis_port}, timeout = 300'
    redis = f"redis = {{ {redis_table} }}\n" if redis_table else ""
    return llm_config(mock, consumers=TENANT, extra=f"""
[[plugins]]
name = "ai-rate-limiting-advanced"
service = "llm"
[plugins.config]
strategy = "{strategy}"
window_type = "sliding"
fault_tolerant = {str(fault_tolerant).lower()}
llm_providers = [{{ name = "openai", window_size = [60, 3600], limit = [{limit}, 1000000] }}]
{redis}""")


TENANT = f"""
[[consumers]]
username = "tenant"
keyauth_credentials = [{{ key = "{KEY}" }}]
"""


class Redis:
    def __init__(self, port: int | None = None, args: list[str] | None = None):
        exe = shutil.which("redis-server")
        assert exe, "redis-server is missing: run scripts/setup.sh --test"
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             *(args or [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


def assert_one_budget(rs: list[httpx.Response]) -> list[httpx.Response]:
    """A burst over two gateways spent one 10,000-token budget, not one each:
    each replica alone would admit nine of its 32, together they admit no more.
    Returns the admitted answers."""
    ok = [r for r in rs if r.status_code == 200]
    assert ok and len(ok) < 64, [r.status_code for r in rs]
    assert spent(rs) <= 10_100, f"two replicas spent {spent(rs)} tokens of 10,000"
    assert len(ok) <= 10, f"{len(ok)} admitted"
    return ok


def burst(urls: list[str], n: int = 64, max_tokens: int = 1000) -> list[httpx.Response]:
    """n concurrent chat requests spread over the gateways."""
    def one(i: int) -> httpx.Response:
        with httpx.Client(timeout=30) as c:
            return c.post(urls[i % len(urls)] + "/chat", json=chat(max_tokens=max_tokens),
                          headers={"apikey": KEY})
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def spent(responses) -> int:
    return sum(r.json()["usage"]["total_tokens"] for r in responses if r.status_code == 200)


def test_64_concurrent_clients_cannot_overshoot_the_budget(mock, gateway_factory):
    mock.behave(completion_tokens=1000)
    gw = gateway_factory(config(mock))
    rs = burst([gw.url])
    ok = [r for r in rs if r.status_code == 200]
    refused = [r for r in rs if r.status_code == 429]
    assert len(ok) + len(refused) == 64, [r.status_code for r in rs]
    assert ok and refused
    assert spent(rs) <= 10_100, f"{len(ok)} admitted spent {spent(rs)} tokens of 10,000"
    r = refused[0]
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["x-ai-ratelimit-limit-60-openai"] == "10000"
    assert r.headers["x-ai-ratelimit-limit-3600-openai"] == "1000000"
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error" and "openai" in err["message"]
    assert len(mock.requests()) == len(ok), "a refused request must not reach the provider"
    line = f'ai_rate_limit_refusals_total{{ai_provider="openai",consumer="tenant"}} {len(refused)}'
    assert line in gw.metrics()


def test_answers_carry_the_budget_and_usage_replaces_the_estimate(mock, gateway_factory):
    mock.behave(completion_tokens=10)
    gw = gateway_factory(config(mock))
    first = gw.http.post("/chat", json=chat(max_tokens=1000), headers={"apikey": KEY})
    assert first.status_code == 200
    assert first.headers["x-ai-ratelimit-limit-60-openai"] == "10000"
    # Admission reserved the estimate (about 1,000 tokens) ...
    assert int(first.headers["x-ai-ratelimit-remaining-60-openai"]) < 9100
    used = first.json()["usage"]["total_tokens"]
    second = gw.http.post("/chat", json=chat(max_tokens=1), headers={"apikey": KEY})
    # ... and the real usage replaced it when the answer ended.
    remaining = int(second.headers["x-ai-ratelimit-remaining-60-openai"])
    assert remaining > 9900 - used, remaining


def test_provider_errors_refund_the_reservation(mock, gateway_factory):
    gw = gateway_factory(config(mock, limit=3000))
    mock.behave(status=500, times=3)
    for _ in range(3):
        assert gw.http.post("/chat", json=chat(max_tokens=2000), headers={"apikey": KEY}).status_code == 500
    r = gw.http.post("/chat", json=chat(max_tokens=2000), headers={"apikey": KEY})
    assert r.status_code == 200, "failed answers used no tokens and must not eat the budget"


def test_two_gateways_share_one_redis_budget(mock, gateway_factory, redis):
    mock.behave(completion_tokens=1000)
    a = gateway_factory(config(mock, "redis", redis.port), name="a")
    b = gateway_factory(config(mock, "redis", redis.port), name="b")
    assert_one_budget(burst([a.url, b.url]))
    assert a.access_log(wait_for=32) and b.access_log(wait_for=32)
    assert {l["status"] for l in a.access_log() + b.access_log()} == {200, 429}


def test_redis_outage_fails_open_then_recovers(mock, gateway_factory, redis):
    mock.behave(completion_tokens=1000)
    gw = gateway_factory(config(mock, "redis", redis.port, limit=2000))
    assert gw.http.post("/chat", json=chat(max_tokens=1000), headers={"apikey": KEY}).status_code == 200
    redis.stop()
    # fault_tolerant: served without a limit while Redis is away, never an error.
    for _ in range(3):
        assert gw.http.post("/chat", json=chat(max_tokens=1000), headers={"apikey": KEY}).status_code == 200
    assert "ai_rate_limit_backend_errors_total" in gw.metrics()
    fresh = Redis(redis.port)
    try:
        codes = [gw.http.post("/chat", json=chat(max_tokens=1000), headers={"apikey": KEY}).status_code
                 for _ in range(6)]
        assert 429 in codes, f"limits must hold again once Redis is back: {codes}"
    finally:
        fresh.stop()


def test_redis_outage_fails_closed_when_configured(mock, gateway_factory, redis):
    gw = gateway_factory(config(mock, "redis", redis.port, fault_tolerant=False))
    assert gw.http.post("/chat", json=chat(), headers={"apikey": KEY}).status_code == 200
    redis.stop()
    r = gw.http.post("/chat", json=chat(), headers={"apikey": KEY})
    assert r.status_code == 503
    assert "unavailable" in r.json()["error"]["message"]
    assert gw.proc.poll() is None


def test_counters_survive_a_reload(mock, gateway_factory):
    import signal

    mock.behave(completion_tokens=1000)
    gw = gateway_factory(config(mock, limit=2500))
    assert gw.http.post("/chat", json=chat(max_tokens=1000), headers={"apikey": KEY}).status_code == 200
    before = int(gw.http.post("/chat", json=chat(max_tokens=1), headers={"apikey": KEY})
                 .headers["x-ai-ratelimit-remaining-60-openai"])
    # An unrelated change: the limit itself is the same, so its counters stay.
    gw.config_path.write_text(gw.config_path.read_text().replace('name = "chat"', 'name = "chat2"'))
    gw.proc.send_signal(signal.SIGHUP)
    for _ in range(250):
        if 'tollgate_config_reloads_total{result="success"} 1' in gw.metrics():
            break
        time.sleep(0.02)
    else:
        raise AssertionError("reload did not happen")
    r = gw.http.post("/chat", json=chat(max_tokens=1), headers={"apikey": KEY})
    after = int(r.headers["x-ai-ratelimit-remaining-60-openai"])
    assert after < before, f"the budget was reset by a reload: {before} -> {after}"


def test_plugins_with_different_redis_passwords_get_their_own_clients(mock, gateway_factory):
    """Two consumers' limits on one Redis, one with its password and one with a
    wrong one: each plugin connects with its own credentials, so the right one
    counts and refuses over budget, and the wrong one fails closed as configured."""
    redis = Redis(args=["--requirepass", "right-pw"])
    try:
        def plugin(consumer: str, password: str) -> str:
            return f"""
[[plugins]]
name = "ai-rate-limiting-advanced"
consumer = "{consumer}"
[plugins.config]
strategy = "redis"
fault_tolerant = false
llm_providers = [{{ name = "openai", window_size = [60], limit = [1500] }}]
redis = {{ host = "127.0.0.1", port = {redis.port}, password = "{password}", timeout = 300 }}
"""
        consumers = """
[[consumers]]
username = "right"
keyauth_credentials = [{ key = "right-key" }]

[[consumers]]
username = "wrong"
keyauth_credentials = [{ key = "wrong-key" }]
"""
        mock.behave(completion_tokens=1000)
        gw = gateway_factory(llm_config(mock, consumers=consumers,
                                        extra=plugin("wrong", "wrong-pw") + plugin("right", "right-pw")))
        post = lambda key: gw.http.post("/chat", json=chat(max_tokens=1000), headers={"apikey": key})
        codes = [post("right-key").status_code for _ in range(3)]
        assert codes[0] == 200 and 429 in codes, codes
        assert post("wrong-key").status_code == 503, "a wrong Redis password must not borrow another's client"
    finally:
        redis.stop()
