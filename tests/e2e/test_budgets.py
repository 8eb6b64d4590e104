"""ai-budget end to end: a consumer's daily budget in dollars, shared by two
gateway replicas through a real redis-server, refused once spent; the soft
limit's warning; a streamed answer charged; `/spend` on the admin listener
reporting what the access logs' costs add up to; and the shipped price table
pricing a target that sets no price."""

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import pytest

from configs import ALICE_KEY, BOB_KEY, PROVIDER_KEY, llm_config
from conftest import chat
from test_token_limits import Redis

# gpt-4o in the shipped table (LiteLLM's list prices): $2.50 in, $10 out per million.
GPT_4O = (2.5, 10.0)


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


def budget_plugin(strategy: str = "local", redis_port: int | None = None, *, error_code: int = 429,
                  hard: float = 0.01, soft: float | None = None, fault_tolerant: bool = True) -> str:
    redis = f'redis = {{ host = "127.0.0.1", port = {redis_port}, timeout = 500 }}\n' if redis_port else ""
    soft_line = f"soft_limit = {soft}\n" if soft is not None else ""
    return f"""
[[plugins]]
name = "ai-budget"
[plugins.config]
strategy = "{strategy}"
error_code = {error_code}
fault_tolerant = {str(fault_tolerant).lower()}
{redis}
[[plugins.config.budgets]]
consumer = "alice"
period = "day"
timezone = "Europe/Paris"
hard_limit = {hard}
{soft_line}
[[plugins.config.budgets]]
consumer_group = "contractors"
period = "month"
hard_limit = 5.0
"""


def cost_of(usage: dict) -> float:
    return (usage["prompt_tokens"] * GPT_4O[0] + usage["completion_tokens"] * GPT_4O[1]) / 1e6


def logged_costs(*gateways, consumer: str = "alice") -> list[float]:
    out = []
    for gw in gateways:
        for line in gw.access_log():
            if line.get("consumer") == consumer and "cost" in line.get("ai", {}):
                out.append(line["ai"]["cost"])
    return out


def spend(gw, query: str = "consumer=alice") -> dict:
    r = httpx.get(f"{gw.admin_url}/spend?{query}", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def settled(gw, query: str = "consumer=alice", timeout: float = 10.0) -> None:
    """Waits until no request holds money in the budgets (the last answer's
    settle, which runs after the client has its answer, has landed)."""
    deadline = time.monotonic() + timeout
    while any(b["in_flight"] for b in spend(gw, query)["budgets"]):
        assert time.monotonic() < deadline, spend(gw, query)
        time.sleep(0.02)


def streamed(gw, key: str) -> tuple[int, str]:
    with gw.http.stream("POST", "/chat", json=chat(stream=True), headers={"apikey": key}) as r:
        return r.status_code, "".join(r.iter_text())


def test_a_daily_budget_on_two_replicas_sharing_redis(mock, gateway_factory, redis):
    """$0.003 an answer against $0.01 a day: answers 1-4 (alternating replicas,
    the second one streamed) are served, the fourth passing the limit, and
    every later request is refused on either replica with 402, naming the
    budget, the spend and the reset; /spend on both replicas reports the sum of
    the access logs' costs."""
    mock.behave(completion_tokens=300)
    config = llm_config(mock, extra=budget_plugin("redis", redis.port, error_code=402, soft=0.004))
    a = gateway_factory(config, name="a")
    b = gateway_factory(config, name="b")
    served = []
    for i, gw in enumerate([a, b, a, b]):
        # The warning reads the settled spend: the previous answer must have settled.
        settled(gw)
        if i == 1:
            status, body = streamed(gw, ALICE_KEY)
            assert status == 200 and "[DONE]" in body, body
            served.append(None)
            continue
        r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
        assert r.status_code == 200, (i, r.text)
        served.append(r)
        # The soft limit ($0.004) warns once the settled spend reached it: the third answer.
        assert ("x-ai-budget-warning" in r.headers) == (i >= 2), (i, dict(r.headers))
    assert "consumer:alice:day" in served[2].headers["x-ai-budget-warning"]
    assert served[0].headers["x-ai-budget-limit"] == "0.01"
    for gw in (a, b, a):
        r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
        assert r.status_code == 402, r.text
        err = r.json()["error"]
        assert (err["type"], err["code"]) == ("insufficient_quota", "budget_exceeded")
        assert 'budget "consumer:alice:day" is used up' in err["message"]
        assert "of its $0.01 limit this day (Europe/Paris); it resets at " in err["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 25 * 3600
        assert r.headers["x-ai-budget-reset"] == r.headers["retry-after"]
    assert len(mock.requests()) == 4, "a refused request never reaches the provider"
    # Another consumer has no daily budget.
    assert a.http.post("/chat", json=chat(), headers={"apikey": BOB_KEY}).status_code == 200

    a.access_log(wait_for=8)
    b.access_log(wait_for=3)
    costs = logged_costs(a, b)
    assert len(costs) == 4, costs
    for r in served:
        if r is not None:
            assert cost_of(r.json()["usage"]) in [pytest.approx(c, abs=1e-12) for c in costs]
    for gw in (a, b):
        (day,) = spend(gw)["budgets"]
        assert day["budget"] == "consumer:alice:day" and day["consumer"] == "alice"
        assert day["spend"] == pytest.approx(sum(costs), abs=1e-8), (day, costs)
        assert day["spend"] > 0.01 and day["in_flight"] == 0
        assert (day["hard_limit"], day["soft_limit"], day["remaining"]) == (0.01, 0.004, 0)
        assert (day["period"], day["timezone"], day["strategy"]) == ("day", "Europe/Paris", "redis")
        assert day["period_start"] < day["period_end"]
    group = spend(a, "group=contractors")["budgets"]
    bob_costs = logged_costs(a, consumer="bob")
    assert len(group) == 1 and group[0]["spend"] == pytest.approx(sum(bob_costs), abs=1e-8) and bob_costs
    # A consumer's own view includes the budgets of their groups (bob is a contractor).
    assert [x["budget"] for x in spend(a, "consumer=bob")["budgets"]] == ["consumer_group:contractors:month"]
    assert {x["budget"] for x in spend(a, "")["budgets"]} == {"consumer:alice:day", "consumer_group:contractors:month"}
    assert httpx.get(f"{a.admin_url}/spend?consumer=nobody", timeout=5).status_code == 404
    assert httpx.get(f"{a.admin_url}/spend?tenant=x", timeout=5).status_code == 400
    assert 'ai_budget_refusals_total{budget="consumer:alice:day",consumer="alice"} 2' in a.metrics()
    assert 'ai_budget_warnings_total{budget="consumer:alice:day",consumer="alice"} 1' in a.metrics()


def test_a_burst_cannot_overspend_by_more_than_what_is_in_flight(mock, gateway_factory):
    """Twenty concurrent requests of about $0.001 each against $0.01: each
    admission holds its estimate, so the burst is cut at about ten instead of
    all twenty slipping in while nothing was settled yet."""
    mock.behave(completion_tokens=100, latency_ms=300)
    gw = gateway_factory(llm_config(mock, extra=budget_plugin()))

    def one(_):
        with httpx.Client(timeout=30) as c:
            return c.post(gw.url + "/chat", json=chat(max_tokens=100), headers={"apikey": ALICE_KEY})

    with ThreadPoolExecutor(20) as pool:
        rs = list(pool.map(one, range(20)))
    ok = [r for r in rs if r.status_code == 200]
    assert len(ok) + sum(r.status_code == 429 for r in rs) == 20, [r.status_code for r in rs]
    assert 5 <= len(ok) <= 10, [r.status_code for r in rs]
    total = sum(cost_of(r.json()["usage"]) for r in ok)
    assert total <= 0.01 + max(cost_of(r.json()["usage"]) for r in ok), total
    gw.access_log(wait_for=20)
    assert spend(gw)["budgets"][0]["spend"] == pytest.approx(total, abs=1e-8)


def test_an_anthropic_caller_is_refused_in_anthropics_shape(mock, gateway_factory):
    """Claude Sonnet 4.5 priced from the table ($3 in, $15 out per million):
    the first answer uses up a $0.000001 budget, and the Anthropic SDK reads
    the second's refusal as Anthropic's own rate-limit error."""
    claude = "claude-sonnet-4-5-20250929"
    gw = gateway_factory(llm_config(
        mock, provider="anthropic", model_name=claude, llm_format="anthropic", upstream_url=f"{mock.url}/v1/messages",
        auth=f'header_name = "x-api-key", header_value = "{PROVIDER_KEY}"', path="/anthropic",
        key_auth='key_names = ["apikey", "x-api-key", "authorization"]', extra=budget_plugin(hard=0.000001)))
    client = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=ALICE_KEY, max_retries=0, timeout=30)
    ask = dict(model=claude, max_tokens=64, messages=[{"role": "user", "content": "Name a colour"}])
    first = client.messages.with_raw_response.create(**ask)
    assert first.headers["x-ai-budget-name"] == "consumer:alice:day"
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(**ask)
    body = refused.value.body
    assert body["type"] == "error" and 'budget "consumer:alice:day" is used up' in body["error"]["message"], body
    (day,) = spend(gw)["budgets"]
    u = first.parse().usage
    assert day["spend"] == pytest.approx((u.input_tokens * 3.0 + u.output_tokens * 15.0) / 1e6, abs=1e-9)


@pytest.mark.parametrize("fault_tolerant", [True, False])
def test_redis_down_is_handled_as_the_token_limiter_does(mock, gateway_factory, redis, fault_tolerant):
    """Redis unreachable: `fault_tolerant` serves without budgets (counted in
    ai_rate_limit_backend_errors_total), otherwise 503; /spend says 503."""
    gw = gateway_factory(llm_config(mock, extra=budget_plugin("redis", redis.port, fault_tolerant=fault_tolerant)))
    assert gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY}).status_code == 200
    redis.stop()
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    if fault_tolerant:
        assert r.status_code == 200, r.text
        assert "x-ai-budget-limit" not in r.headers
    else:
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "budget_unavailable"
    assert 'ai_rate_limit_backend_errors_total{operation="redis"} 1' in gw.metrics()
    s = httpx.get(f"{gw.admin_url}/spend", timeout=10)
    assert s.status_code == 503 and "budget store unavailable" in s.json()["message"], s.text


def test_the_shipped_table_prices_a_target_without_prices(mock, gateway_factory):
    """gpt-4o with no input_cost/output_cost is priced at the table's list
    prices; a target's own prices win over the table."""
    gw = gateway_factory(llm_config(mock))
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    (line,) = gw.access_log(wait_for=1)
    assert line["ai"]["cost"] == pytest.approx(cost_of(r.json()["usage"]), abs=1e-15)
    own = gateway_factory(llm_config(mock, options="input_cost = 1.0\noutput_cost = 2.0"), name="own")
    r = own.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    (line,) = own.access_log(wait_for=1)
    u = r.json()["usage"]
    assert line["ai"]["cost"] == pytest.approx((u["prompt_tokens"] * 1.0 + u["completion_tokens"] * 2.0) / 1e6)


def test_a_hold_its_replica_never_settled_is_released_at_its_deadline(mock, gateway_factory, redis):
    """A replica killed mid-request leaves its hold in Redis: the hold's own
    deadline releases it, so the budget is not locked for the rest of the day."""
    gw = gateway_factory(llm_config(mock, extra=budget_plugin("redis", redis.port, hard=1.0)))
    assert gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY}).status_code == 200
    settled(gw)

    def cli(*args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(redis.port), *args], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    (counter,) = [k for k in cli("--scan", "--pattern", "tollgate:{budget}:consumer:alice:day|*").split()
                  if not k.endswith(":holds")]
    # A dead replica's hold of $2 (past the $1 limit), its deadline already passed.
    cli("HINCRBY", counter, "held", str(2_000_000_000))
    cli("ZADD", counter + ":holds", "1", "dead-replica.1:2000000000")
    r = gw.http.post("/chat", json=chat(), headers={"apikey": ALICE_KEY})
    assert r.status_code == 200, r.text
    settled(gw)
    assert cli("ZCARD", counter + ":holds") == "0"
