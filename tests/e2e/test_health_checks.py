"""Active health checks (balancer.healthchecks.active): a target whose health
endpoint fails is out of rotation before any client request reaches it, comes
back when the endpoint recovers, keeps its health across a reload that keeps
the plugin, and stops being probed when a reload drops the checks."""

import signal

import httpx
import pytest

from configs import poll
from conftest import Mock
from test_failover import HEADERS, advanced, post, target

# Probes every 0.2 s; two failures take a target out, two successes put it back.
CHECKS = """
[plugins.config.balancer.healthchecks.active]
type = "http"
http_path = "/health"
timeout = 1
healthy = { interval = 0.2, successes = 2 }
unhealthy = { interval = 0.2, http_failures = 2, tcp_failures = 2, timeouts = 2 }
"""


@pytest.fixture
def pair():
    started = [Mock(), Mock()]
    yield started
    for m in started:
        if m.proc.poll() is None:
            m.stop()


def config(a: Mock, b: Mock, checks: str = CHECKS) -> str:
    return advanced(target(a.chat_url) + target(b.chat_url, model="gpt-4o-mini"), balancer='algorithm = "round-robin"') + checks


def targets(gw) -> dict:
    status = httpx.get(f"{gw.admin_url}/status", timeout=5).json()
    return {t["target"]: t for t in status["targets"]}


def chats(mock: Mock) -> list:
    return [r for r in mock.requests() if r.get("path", "").endswith("/chat/completions")]


def metric(gw, name: str, **labels) -> float | None:
    for line in gw.metrics().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.split()[-1])
    return None


def test_a_failing_target_is_out_before_any_request_and_back_after_it_recovers(pair, gateway_factory):
    a, b = pair
    b.behave(health_status=503)
    gw = gateway_factory(config(a, b))

    # No client request yet: the probes alone take b out.
    down = poll(lambda: targets(gw)["openai/gpt-4o-mini"]["active_healthy"] is False, timeout=10)
    assert down, targets(gw)
    st = targets(gw)
    assert st["openai/gpt-4o-mini"]["healthy"] is False
    assert st["openai/gpt-4o-mini"]["circuit_open"] is False, "the passive breaker saw nothing"
    assert st["openai/gpt-4o-mini"]["active_health_checks"]["http_failure"] >= 2
    assert st["openai/gpt-4o"]["active_healthy"] is True
    assert metric(gw, "ai_target_active_healthy", target="openai/gpt-4o-mini") == 0
    assert metric(gw, "ai_target_healthy", target="openai/gpt-4o-mini") == 0
    assert metric(gw, "ai_target_active_health_checks_total", target="openai/gpt-4o-mini", result="http_failure") >= 2

    for _ in range(10):
        r = post(gw)
        assert r.status_code == 200, r.text
        assert r.headers["x-tollgate-llm-model"] == "openai/gpt-4o"
    assert len(chats(a)) == 10
    assert chats(b) == [], "no chat request reached the target failing its health check"
    assert b.stats()["health_checks"] >= 2

    # The endpoint recovers: two passing probes bring b back into rotation.
    b.behave(health_status=None)
    assert poll(lambda: targets(gw)["openai/gpt-4o-mini"]["active_healthy"] is True, timeout=10), targets(gw)
    served = [post(gw).headers["x-tollgate-llm-model"] for _ in range(6)]
    assert served.count("openai/gpt-4o-mini") == 3, served
    assert len(chats(b)) == 3
    assert metric(gw, "ai_target_active_healthy", target="openai/gpt-4o-mini") == 1


def test_health_survives_a_reload_that_keeps_the_plugin_and_stops_with_one_that_drops_the_checks(pair, gateway_factory):
    a, b = pair
    b.behave(health_status=503)
    gw = gateway_factory(config(a, b))
    assert poll(lambda: targets(gw)["openai/gpt-4o-mini"]["active_healthy"] is False, timeout=10)

    def reload(text: str, n: int) -> None:
        gw.config_path.write_text(text)
        gw.proc.send_signal(signal.SIGHUP)
        ok = lambda: (metric(gw, "tollgate_config_reloads_total", result="success") or 0) >= n
        assert poll(ok, timeout=10), gw.stderr()

    # Same plugin (the consumer list changed): same balancer, same verdict and
    # the same probe counts (a new balancer would start healthy, from zero).
    failures = targets(gw)["openai/gpt-4o-mini"]["active_health_checks"]["http_failure"]
    same = config(a, b).replace('username = "alice"', 'username = "alice"\ncustom_id = "a-1"')
    assert same != config(a, b)
    reload(same, 1)
    st = targets(gw)["openai/gpt-4o-mini"]
    assert st["active_healthy"] is False
    assert st["active_health_checks"]["http_failure"] >= failures
    assert all(post(gw).headers["x-tollgate-llm-model"] == "openai/gpt-4o" for _ in range(4))
    assert chats(b) == []

    # Without healthchecks: a balancer without probes, and the old one's stop.
    reload(config(a, b, checks=""), 2)
    st = targets(gw)["openai/gpt-4o-mini"]
    assert st["active_healthy"] is None and st["healthy"] is True
    served = [post(gw).headers["x-tollgate-llm-model"] for _ in range(4)]
    assert "openai/gpt-4o-mini" in served
    probes = b.stats()["health_checks"]
    assert not poll(lambda: b.stats()["health_checks"] > probes, timeout=1.5), "probes stopped with the checks"
