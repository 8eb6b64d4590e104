"""`tollgate check -c FILE`: a summary and exit 0 for a valid file; every error,
each at `file:line:col:`, and exit 1 otherwise. `tollgate run` refuses the same files."""

import os
import re
import subprocess

import pytest

from conftest import ROOT, bin_dir

ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<rest>.*)$")


def check(path, env=None):
    full_env = {k: v for k, v in os.environ.items() if k not in ("SOME_MISSING_VAR",)}
    full_env.update(env or {})
    return subprocess.run(
        [str(bin_dir() / "tollgate"), "check", "-c", str(path)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=30,
    )


def line_of(text: str, needle: str) -> int:
    (n,) = [i for i, l in enumerate(text.splitlines(), 1) if needle in l]
    return n


def errors_of(out: str) -> list[re.Match]:
    lines = [l for l in out.splitlines() if l.strip()]
    matches = [ERROR_LINE.match(l) for l in lines]
    assert all(matches), f"every error line has file:line:col: {lines}"
    return matches


VALID = """
[server]
listen = ["127.0.0.1:18000"]
admin_listen = "127.0.0.1:18100"

[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[consumers]]
username = "alice"
keyauth_credentials = [{ key = "alice-key" }]

[[plugins]]
name = "key-auth"
service = "llm"

[[plugins]]
name = "ai-proxy"
service = "llm"
[plugins.config]
route_type = "llm/v1/chat"
auth = { header_name = "Authorization", header_value = "Bearer {vault://env/e2e-check-key}" }
[plugins.config.model]
provider = "openai"
name = "gpt-4o"
"""


def test_valid_file_exits_0_with_a_summary(tmp_path):
    path = tmp_path / "valid.toml"
    path.write_text(VALID)
    p = check(path, env={"E2E_CHECK_KEY": "sk-check-secret"})
    assert p.returncode == 0, p.stderr
    assert "OK" in p.stdout
    assert "1 services, 1 routes, 1 consumers, 2 plugins" in p.stdout
    assert "sk-check-secret" not in p.stdout + p.stderr


@pytest.mark.parametrize(
    "name",
    ["conf/tollgate.toml", "conf/examples/secure-mcp-traffic.toml", "conf/examples/openai.toml", "conf/examples/providers.toml",
     "conf/examples/mcp-tools.toml", "conf/examples/agents.toml"],
)
def test_shipped_configs_check_clean(name):
    env = {
        "OPENAI_API_KEY": "sk-x",
        "TOLLGATE_CLIENT_KEY": "client-x",
        "ANTHROPIC_API_KEY": "sk-ant-x",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "GEMINI_API_KEY": "g-x",
        "MCP_SESSION_SECRET": "0123456789abcdef0123",
        "MCP_UPSTREAM_TOKEN": "mcp-x",
    }
    p = check(ROOT / name, env=env)
    assert p.returncode == 0, p.stderr
    assert "OK" in p.stdout


BAD = """
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "no-such-service"
paths = ["/chat"]

[[consumers]]
username = "alice"
keyauth_credentials = [{ key = "{vault://env/some-missing-var}" }]

[[plugins]]
name = "key-auth"
service = "llm"
[plugins.config]
key_names = ["apikey"]
hide_credentialz = true

[[plugins]]
name = "ai-proxy"
service = "llm"
[plugins.config]
route_type = "llm/v1/chat"
[plugins.config.model]
provider = "openai"
name = "gpt-4o"
"""


def test_all_errors_listed_in_one_run_each_with_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    p = check(path)
    assert p.returncode == 1
    errs = errors_of(p.stderr)
    assert len(errs) == 3, p.stderr
    by_line = {int(e["line"]): e["rest"] for e in errs}
    assert all(e["file"] == str(path) for e in errs)

    unknown_field = line_of(BAD, "hide_credentialz")
    assert "unknown field `hide_credentialz`" in by_line[unknown_field]
    unknown_service = line_of(BAD, 'service = "no-such-service"')
    assert "unknown service `no-such-service`" in by_line[unknown_service]
    vault = line_of(BAD, "some-missing-var")
    assert "SOME_MISSING_VAR is not set" in by_line[vault]
    assert "{vault://env/some-missing-var}" in by_line[vault]


def test_run_refuses_an_invalid_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    p = subprocess.run(
        [str(bin_dir() / "tollgate"), "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "SOME_MISSING_VAR"},
    )
    assert p.returncode == 1
    assert "unknown service `no-such-service`" in p.stderr


def test_missing_file(tmp_path):
    p = check(tmp_path / "nope.toml")
    assert p.returncode == 1
    assert "cannot read config file" in p.stderr


def test_syntax_error_has_a_position(tmp_path):
    text = VALID.replace('name = "chat"', 'name = "chat', 1)
    path = tmp_path / "syntax.toml"
    path.write_text(text)
    p = check(path, env={"E2E_CHECK_KEY": "k"})
    assert p.returncode == 1
    (err,) = errors_of(p.stderr)
    assert int(err["line"]) == line_of(text, 'name = "chat')


def test_unknown_route_field_does_not_hide_other_errors(tmp_path):
    text = BAD.replace('paths = ["/chat"]', 'paths = ["/chat"]\nstrip_pth = true', 1)
    path = tmp_path / "bad2.toml"
    path.write_text(text)
    p = check(path)
    assert p.returncode == 1
    lines = {int(e["line"]): e["rest"] for e in errors_of(p.stderr)}
    assert "unknown field `strip_pth`" in lines.get(line_of(text, "strip_pth"), "")
    assert "unknown service" in lines.get(line_of(text, "no-such-service"), ""), p.stderr
    assert "SOME_MISSING_VAR" in lines.get(line_of(text, "some-missing-var"), ""), p.stderr


ADVANCED = """
[[services]]
name = "llm"

[[routes]]
name = "chat"
service = "llm"
paths = ["/chat"]

[[plugins]]
name = "ai-proxy-advanced"
service = "llm"
[[plugins.config.targets]]
route_type = "llm/v1/chat"
model = { provider = "openai", name = "gpt-4o", options = { upstream_url = "http://127.0.0.1:9001/v1/chat/completions" } }
[plugins.config.balancer.healthchecks.active]
"""


def test_active_healthchecks_check_clean_or_name_each_refusal(tmp_path):
    good = ADVANCED + """type = "http"
http_path = "/health"
timeout = 2
headers = { x-probe = ["tollgate"] }
healthy = { interval = 5, successes = 2, http_statuses = [200] }
unhealthy = { interval = 5, http_failures = 3, tcp_failures = 3, timeouts = 3 }
"""
    path = tmp_path / "good.toml"
    path.write_text(good)
    p = check(path)
    assert p.returncode == 0, p.stderr

    bad = ADVANCED + """type = "grpc"
healthy = { interval = 5, successes = 0 }
unhealthy = { interval = 10, http_failures = 3, tcp_failures = 2 }
"""
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    p = check(path)
    assert p.returncode == 1
    by_line = {}
    for e in errors_of(p.stderr):
        by_line.setdefault(int(e["line"]), []).append(e["rest"])
    assert any("unknown type `grpc`" in m for m in by_line[line_of(bad, 'type = "grpc"')]), p.stderr
    healthy = " ".join(by_line[line_of(bad, "healthy = { interval = 5")])
    assert "successes must be at least 1" in healthy, p.stderr
    unhealthy = " ".join(by_line[line_of(bad, "unhealthy = {")])
    assert "differs from healthy.interval 5" in unhealthy, p.stderr
    assert "against one threshold" in unhealthy, p.stderr
