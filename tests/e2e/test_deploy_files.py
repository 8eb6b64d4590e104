"""The container files must agree with what the gateway really serves."""

import re
import subprocess

from conftest import ROOT, bin_dir


def test_container_config_is_valid_and_matches_the_compose_file():
    out = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(ROOT / "deploy/tollgate.toml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    conf = (ROOT / "deploy/tollgate.toml").read_text()
    compose = (ROOT / "deploy/docker-compose.yml").read_text()
    prom = (ROOT / "deploy/prometheus.yml").read_text()
    proxy_port = re.search(r'listen = \["0\.0\.0\.0:(\d+)"\]', conf).group(1)
    admin_port = re.search(r'admin_listen = "0\.0\.0\.0:(\d+)"', conf).group(1)
    assert f'"{proxy_port}:{proxy_port}"' in compose
    assert f"gateway:{admin_port}" in prom
    mock_port = re.search(r"http://mock:(\d+)/", conf).group(1)
    assert f"0.0.0.0:{mock_port}" in compose
    # The gateway's spans go to the collector's OTLP/HTTP receiver.
    collector = (ROOT / "deploy/otel-collector.yaml").read_text()
    host, port = re.search(r'traces_endpoint = "http://([\w-]+):(\d+)/v1/traces"', conf).groups()
    assert f"\n  {host}:\n" in compose and f"endpoint: 0.0.0.0:{port}" in collector


def test_every_yaml_and_json_file_in_deploy_parses():
    import json

    import yaml

    files = sorted(p for p in (ROOT / "deploy").rglob("*") if p.suffix in (".yml", ".yaml", ".json"))
    assert len(files) >= 12, files
    for path in files:
        text = path.read_text()
        docs = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
        assert any(docs), f"{path} is empty"


def test_prometheus_config_passes_promtool():
    """The compose file's Prometheus config is one Prometheus itself accepts
    (promtool comes with Debian's prometheus package, which `make test` installs)."""
    out = subprocess.run(["promtool", "check", "config", str(ROOT / "deploy/prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_healthcheck_probes_the_admin_listener():
    dockerfile = (ROOT / "Dockerfile").read_text()
    conf = (ROOT / "deploy/tollgate.toml").read_text()
    admin_port = re.search(r'admin_listen = "0\.0\.0\.0:(\d+)"', conf).group(1)
    assert f'"tollgate", "health", "--admin", "127.0.0.1:{admin_port}"' in dockerfile
    assert "USER 10001" in dockerfile


def test_health_subcommand_reports_a_live_and_a_dead_gateway(mock, gateway_factory):
    gw = gateway_factory(f"""
[[services]]
name = "pt"
url = "{mock.url}"
[[routes]]
name = "r"
service = "pt"
paths = ["/"]
""")
    ok = subprocess.run([str(bin_dir() / "tollgate"), "health", "--admin", f"127.0.0.1:{gw.admin_port}"])
    assert ok.returncode == 0
    gw.stop()
    dead = subprocess.run([str(bin_dir() / "tollgate"), "health", "--admin", f"127.0.0.1:{gw.admin_port}"],
                          capture_output=True, text=True)
    assert dead.returncode == 1 and "health" in dead.stderr


def test_kubernetes_manifests_match_what_the_gateway_serves(tmp_path):
    import os

    import httpx
    import yaml

    docs = {}
    for path in sorted((ROOT / "deploy/kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    for kind in ("ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget", "ServiceMonitor", "Secret"):
        assert kind in docs, f"deploy/kubernetes has no {kind}"

    # The ConfigMap's config passes `tollgate check` with the Secret's variables set.
    conf_text = docs["ConfigMap"]["data"]["tollgate.toml"]
    conf = tmp_path / "k8s.toml"
    conf.write_text(conf_text)
    env = dict(os.environ, OPENAI_API_KEY="x", TOLLGATE_APP_KEY="y")
    out = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(conf)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr

    # Every env var the config reads comes from the Deployment.
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env_names = {e["name"] for e in container["env"]}
    for ref in re.findall(r"\{vault://env/([a-z0-9-]+)\}", conf_text):
        assert ref.upper().replace("-", "_") in env_names

    # Ports, probes and the scrape path agree with the config and the admin listener.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert f'"0.0.0.0:{ports["proxy"]}"' in conf_text
    assert f'admin_listen = "0.0.0.0:{ports["admin"]}"' in conf_text
    probe_paths = {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]}
    scrape = docs["ServiceMonitor"]["spec"]["endpoints"][0]["path"]
    grace = int(re.search(r"grace_period_seconds = (\d+)", conf_text).group(1))
    assert pod["terminationGracePeriodSeconds"] > grace
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 10001

    # Serve a minimal config and ask the admin listener for each path.
    from conftest import Gateway
    gw = Gateway('[[services]]\nname = "s"\nurl = "http://127.0.0.1:9"\n[[routes]]\nname = "r"\nservice = "s"\npaths = ["/"]\n', tmp_path)
    try:
        for path in probe_paths | {scrape}:
            assert httpx.get(f"{gw.admin_url}{path}", timeout=5).status_code == 200, path
    finally:
        gw.stop()


def test_dashboard_queries_only_metrics_the_gateway_exports(mock, gateway_factory):
    """Every metric the Grafana dashboard queries exists on /metrics after traffic."""
    import json

    from configs import ALICE_KEY, llm_config

    gw = gateway_factory(llm_config(mock, options="input_cost = 1.0\noutput_cost = 2.0", extra="""
[[plugins]]
name = "ai-rate-limiting-advanced"
service = "llm"
[plugins.config]
llm_providers = [{ name = "openai", window_size = [60], limit = [1] }]
"""))
    for _ in range(2):
        gw.http.post("/chat", json={"messages": [{"role": "user", "content": "hi"}], "stream": True},
                     headers={"apikey": ALICE_KEY})
    exported = {line.split("{")[0].split(" ")[0] for line in gw.metrics().splitlines()
                if line and not line.startswith("#")}
    dash = json.loads((ROOT / "deploy/grafana/dashboards/tollgate.json").read_text())
    queried = set()
    for p in dash["panels"]:
        for t in p["targets"]:
            queried |= set(re.findall(r"\b([a-z_]+(?:_total|_bucket))\b", t["expr"]))
    assert queried, "the dashboard queries nothing"
    missing = {m for m in queried if m not in exported}
    # Backend errors and reloads appear only once they happen; the rest must be there now.
    assert missing <= {"ai_rate_limit_backend_errors_total", "tollgate_config_reloads_total"}, missing
