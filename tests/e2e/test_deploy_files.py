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
