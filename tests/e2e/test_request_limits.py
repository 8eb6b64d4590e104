"""Kong's rate-limiting plugin: requests per identifier in clock-aligned windows.
(Hour windows keep the tests clear of a window boundary.)"""

from configs import llm_config, passthrough_block
from conftest import chat


def config(mock) -> str:
    return llm_config(mock, extra=passthrough_block(mock.url, path="/pt") + """
[[plugins]]
name = "rate-limiting"
service = "llm"
[plugins.config]
hour = 2
limit_by = "consumer"

[[plugins]]
name = "rate-limiting"
service = "pt"
[plugins.config]
hour = 3
day = 100
limit_by = "ip"
""")


def test_consumers_get_their_own_request_budget_on_llm_routes(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    alice = [gw.http.post("/chat", json=chat(), headers={"apikey": "alice-key"}) for _ in range(3)]
    assert [r.status_code for r in alice] == [200, 200, 429]
    assert alice[0].headers["x-ratelimit-limit-hour"] == "2"
    assert alice[0].headers["x-ratelimit-remaining-hour"] == "1"
    refused = alice[2]
    assert refused.json()["error"]["message"] == "API rate limit exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    # Bob's budget is his own.
    assert gw.http.post("/chat", json=chat(), headers={"apikey": "bob-key"}).status_code == 200
    assert len(mock.requests()) == 3


def test_passthrough_routes_are_limited_by_ip_in_kongs_shape(mock, gateway_factory):
    gw = gateway_factory(config(mock))
    rs = [gw.http.post("/pt/v1/chat/completions", json=chat()) for _ in range(4)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert rs[0].headers["x-ratelimit-limit-hour"] == "3"
    assert rs[0].headers["x-ratelimit-limit-day"] == "100"
    assert rs[2].headers["x-ratelimit-remaining-hour"] == "0"
    assert rs[3].json() == {"message": "API rate limit exceeded"}
    assert len(mock.requests()) == 3
