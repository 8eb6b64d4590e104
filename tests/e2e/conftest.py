"""Harness for end-to-end tests: real tollgate and tollgate-mock binaries on loopback.

Binaries come from $TOLLGATE_BIN_DIR (default: target/release, else target/debug).
Each test gets a fresh mock and, through `gateway_factory`, gateways started on
configs written to a temporary directory.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def bin_dir() -> Path:
    env = os.environ.get("TOLLGATE_BIN_DIR")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        d = ROOT / "target" / profile
        if (d / "tollgate").exists() and (d / "tollgate-mock").exists():
            return d
    raise RuntimeError("build tollgate first: cargo build --release")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mock:
    """A tollgate-mock process; its control API drives behaviour and records requests."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [str(bin_dir() / "tollgate-mock"), "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"mock did not start: {line!r}")
        self.addr = m.group(1)
        self.url = f"http://{self.addr}"
        self.http = httpx.Client(base_url=self.url, timeout=10)

    @property
    def chat_url(self) -> str:
        return f"{self.url}/v1/chat/completions"

    def behave(self, **behavior) -> None:
        self.http.post("/_mock/behavior", json=behavior).raise_for_status()

    def reset(self) -> None:
        self.http.post("/_mock/reset").raise_for_status()

    def requests(self) -> list:
        return self.http.get("/_mock/requests").json()

    def stats(self) -> dict:
        return self.http.get("/_mock/stats").json()

    def stop(self) -> None:
        self.http.close()
        self.proc.kill()
        self.proc.wait()


class Gateway:
    """A tollgate process on a config file; stdout (the access log) goes to a file."""

    def __init__(self, config_text: str, tmp: Path, env: dict | None = None, name: str = "tollgate", on_spawn=None):
        self.port = free_port()
        self.admin_port = free_port()
        text = config_text.replace("@PORT@", str(self.port)).replace("@ADMIN_PORT@", str(self.admin_port))
        if "[server]" not in text:
            text = (
                f'[server]\nlisten = ["127.0.0.1:{self.port}"]\n'
                f'admin_listen = "127.0.0.1:{self.admin_port}"\n' + text
            )
        self.config_path = tmp / f"{name}-{self.port}.toml"
        self.config_path.write_text(text)
        self.log_path = tmp / f"{name}-{self.port}.log"
        self.err_path = tmp / f"{name}-{self.port}.err"
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [str(bin_dir() / "tollgate"), "run", "-c", str(self.config_path)],
            stdout=open(self.log_path, "w"),
            stderr=open(self.err_path, "w"),
            env=full_env,
        )
        if on_spawn:
            on_spawn(self)  # before the gateway is ready: what a start-up race would meet
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self._wait_ready()
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode}: {self.stderr()}")
            try:
                if httpx.get(f"{self.admin_url}/health", timeout=1).status_code == 200:
                    # The proxy listener starts with the admin one; make sure it accepts.
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway not ready: {self.stderr()}")

    def stderr(self) -> str:
        return self.err_path.read_text() if self.err_path.exists() else ""

    def access_log(self, wait_for: int = 0, timeout: float = 5.0) -> list[dict]:
        """Access-log lines so far (waits until at least `wait_for` lines are written)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [json.loads(l) for l in self.log_path.read_text().splitlines() if l.strip()]
            if len(lines) >= wait_for or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def metrics(self) -> str:
        return httpx.get(f"{self.admin_url}/metrics", timeout=5).text

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class JsonServer:
    """A loopback server answering every GET and POST with the JSON
    `answer(handler)` returns (a POST's body is read first); over TLS when
    given an `ssl.SSLContext`."""

    def __init__(self, answer, ssl_context=None):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                self.do_GET()

            def do_GET(self):
                body = json.dumps(answer(self)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


def chat(content: str = "What is 1+1?", **extra) -> dict:
    body = {
        "messages": [
            {"role": "system", "content": "You are a mathematician"},
            {"role": "user", "content": content},
        ]
    }
    body.update(extra)
    return body


def with_upstream(config_text: str, chat_url: str) -> str:
    """Points every target of a config at the mock: adds `upstream_url` to each
    `[...model.options]` table."""
    out = []
    for line in config_text.splitlines():
        out.append(line)
        if re.match(r"^\[plugins\.config(\.targets)?\.model\.options\]\s*$", line.strip()):
            out.append(f'upstream_url = "{chat_url}"')
    return "\n".join(out) + "\n"


def strip_server(config_text: str) -> str:
    """Drops a config's [server] table so the harness can choose ports."""
    out, skipping = [], False
    for line in config_text.splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == "[server]"
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture
def mock():
    m = Mock()
    yield m
    m.stop()


@pytest.fixture
def gateway_factory(tmp_path):
    started = []

    def start(config_text: str, env: dict | None = None, name: str = "tollgate", on_spawn=None) -> Gateway:
        g = Gateway(config_text, tmp_path, env=env, name=name, on_spawn=on_spawn)
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()
