"""Which route and which target serve a request: paths, hosts, methods, and
ai-proxy-advanced's round-robin over its targets."""

from conftest import chat
from configs import PROVIDER_KEY


def service_and_route(mock, service: str, route: str, route_body: str, model: str) -> str:
    return f"""
[[services]]
name = "{service}"

[[routes]]
name = "{route}"
service = "{service}"
{route_body}

[[plugins]]
name = "ai-proxy"
service = "{service}"
[plugins.config]
route_type = "llm/v1/chat"
[plugins.config.model]
provider = "openai"
name = "{model}"
[plugins.config.model.options]
upstream_url = "{mock.chat_url}"
"""


def test_longest_path_prefix_wins(mock, gateway_factory):
    cfg = service_and_route(mock, "general", "root", 'paths = ["/v1"]', "gpt-4o") + service_and_route(
        mock, "mini", "mini-route", 'paths = ["/v1/mini"]', "gpt-4o-mini"
    )
    gw = gateway_factory(cfg)
    assert gw.http.post("/v1/mini/chat/completions", json=chat()).headers["x-tollgate-llm-model"] == "openai/gpt-4o-mini"
    assert gw.http.post("/v1/chat/completions", json=chat()).headers["x-tollgate-llm-model"] == "openai/gpt-4o"
    # A prefix ends at a segment boundary: /v1/minimal is not under /v1/mini.
    assert gw.http.post("/v1/minimal", json=chat()).headers["x-tollgate-llm-model"] == "openai/gpt-4o"
    assert [l["route"] for l in gw.access_log(wait_for=3)] == ["mini-route", "root", "root"]


def test_hosts_select_the_route(mock, gateway_factory):
    cfg = service_and_route(
        mock, "exact", "exact-host", 'paths = ["/chat"]\nhosts = ["api.example.test"]', "gpt-4o"
    ) + service_and_route(mock, "wild", "wild-host", 'paths = ["/chat"]\nhosts = ["*.example.test"]', "gpt-4o-mini")
    gw = gateway_factory(cfg)

    def model_for(host):
        r = gw.http.post("/chat", json=chat(), headers={"host": host})
        return r.status_code, r.headers.get("x-tollgate-llm-model")

    assert model_for("api.example.test") == (200, "openai/gpt-4o")
    assert model_for("API.Example.Test:8443") == (200, "openai/gpt-4o")  # case and port do not matter
    assert model_for("eu.example.test") == (200, "openai/gpt-4o-mini")
    status, _ = model_for("example.org")
    assert status == 404
    assert len(mock.requests()) == 3


def test_llm_route_without_method_list_answers_405_to_get(mock, gateway_factory):
    gw = gateway_factory(service_and_route(mock, "llm", "chat", 'paths = ["/chat"]', "gpt-4o"))
    r = gw.http.get("/chat")
    assert r.status_code == 405
    assert "POST" in r.json()["error"]["message"]
    assert mock.requests() == []


def test_ai_proxy_advanced_round_robins_over_targets(mock, gateway_factory):
    def target(key: str, model: str) -> str:
        return f"""
[[plugins.config.targets]]
route_type = "llm/v1/chat"
auth = {{ header_name = "Authorization", header_value = "Bearer {key}" }}
[plugins.config.targets.model]
provider = "openai"
name = "{model}"
[plugins.config.targets.model.options]
upstream_url = "{mock.chat_url}"
"""

    cfg = f"""
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[plugins]]
name = "ai-proxy-advanced"
service = "llm"
[plugins.config.balancer]
algorithm = "round-robin"
{target(PROVIDER_KEY + "-a", "gpt-4o")}
{target(PROVIDER_KEY + "-b", "gpt-4o-mini")}
"""
    gw = gateway_factory(cfg)
    labels = []
    for _ in range(4):
        r = gw.http.post("/chat", json=chat())
        assert r.status_code == 200, r.text
        labels.append(r.headers["x-tollgate-llm-model"])
    seen = mock.requests()
    keys = [s["headers"]["authorization"][-2:] for s in seen]
    models = [s["body"]["model"] for s in seen]
    # Each target gets every other request, with its own key and model.
    assert keys in (["-a", "-b", "-a", "-b"], ["-b", "-a", "-b", "-a"])
    assert models == ["gpt-4o" if k == "-a" else "gpt-4o-mini" for k in keys]
    assert labels == [f"openai/{m}" for m in models]
    targets = [l["ai"]["target"] for l in gw.access_log(wait_for=4)]
    assert targets == labels
