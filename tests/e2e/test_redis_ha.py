"""ai-rate-limiting-advanced on highly available Redis: two gateways share one token
budget through a Sentinel-managed master and through a three-node Redis Cluster, and
a Sentinel failover keeps the budget enforced on the promoted replica."""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import chat, free_port
from test_token_limits import KEY, assert_one_budget, burst, config as token_config

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
# The test command installs both (scripts/setup.sh --test): missing is a failure, not a skip.
assert REDIS_SERVER and REDIS_CLI, "redis-server/redis-cli are missing: run scripts/setup.sh --test"


def config(mock, redis_table: str, limit: int = 10_000, fault_tolerant: bool = True) -> str:
    return token_config(mock, "redis", limit=limit, fault_tolerant=fault_tolerant, redis_table=redis_table)


def cli(port: int, *args: str) -> str:
    out = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    return out.stdout


def wait_until(what: str, check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        p = free_port()
        if p + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class Server:
    """One redis-server process (plain, replica, sentinel or cluster node)."""

    def __init__(self, tmp: Path, port: int, *args: str, conf: str | None = None):
        self.port = port
        self.dir = tmp / f"redis-{port}"
        self.dir.mkdir()
        cmd = [REDIS_SERVER]
        if conf is not None:
            # Sentinel rewrites its config file, so it gets its own writable copy.
            path = self.dir / "redis.conf"
            path.write_text(conf)
            cmd.append(str(path))
        cmd += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.dir / "err", "w"))
        wait_until(f"redis on {port}", lambda: cli(port, "PING").strip() == "PONG", 10)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def plain(tmp: Path, started: list, *args: str) -> Server:
    s = Server(tmp, free_port(), "--save", "", "--appendonly", "no", *args)
    started.append(s)
    return s


def sentinel(tmp: Path, started: list, master: Server) -> Server:
    conf = (
        f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 5000\n"
    )
    s = Server(tmp, free_port(), "--sentinel", conf=conf)
    started.append(s)
    wait_until("sentinel to see the master",
               lambda: str(master.port) in cli(s.port, "SENTINEL", "get-master-addr-by-name", "mymaster"))
    return s


def sentinel_table(s: Server, extra: str = "") -> str:
    return (f'sentinel_master = "mymaster", sentinel_nodes = [{{ host = "127.0.0.1", port = {s.port} }}], '
            f"timeout = 1000{extra}")


def test_two_gateways_share_one_budget_through_sentinel(mock, gateway_factory, tmp_path, servers):
    mock.behave(completion_tokens=1000)
    master = plain(tmp_path, servers)
    s = sentinel(tmp_path, servers, master)
    a = gateway_factory(config(mock, sentinel_table(s)), name="a")
    b = gateway_factory(config(mock, sentinel_table(s)), name="b")
    rs = burst([a.url, b.url])
    assert_one_budget(rs)
    assert {r.status_code for r in rs} == {200, 429}
    # The counters live on the master the sentinel named.
    assert cli(master.port, "--scan", "--pattern", "tollgate:rl:*").strip()


def test_two_gateways_share_one_budget_through_a_cluster(mock, gateway_factory, tmp_path, servers):
    mock.behave(completion_tokens=1000)
    nodes = []
    for _ in range(3):
        p = cluster_port()
        nodes.append(Server(tmp_path, p, "--cluster-enabled", "yes",
                            "--cluster-config-file", str(tmp_path / f"nodes-{p}.conf"),
                            "--save", "", "--appendonly", "no"))
        servers.append(nodes[-1])
    out = subprocess.run(
        [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
         "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    wait_until("cluster_state:ok",
               lambda: all("cluster_state:ok" in cli(n.port, "CLUSTER", "INFO") for n in nodes))
    # Each gateway knows a different seed node; both find the slot's owner.
    table = lambda n: f'cluster_nodes = [{{ ip = "127.0.0.1", port = {n.port} }}], timeout = 1000'
    a = gateway_factory(config(mock, table(nodes[0])), name="a")
    b = gateway_factory(config(mock, table(nodes[2])), name="b")
    rs = burst([a.url, b.url])
    assert_one_budget(rs)
    assert {r.status_code for r in rs} == {200, 429}
    # All of one limit's keys share a slot, so they sit on exactly one node.
    holders = [n for n in nodes if cli(n.port, "--scan", "--pattern", "tollgate:rl:*").strip()]
    assert len(holders) == 1, [cli(n.port, "--scan") for n in nodes]


def test_sentinel_failover_keeps_the_budget(mock, gateway_factory, tmp_path, servers):
    mock.behave(completion_tokens=1000)
    master = plain(tmp_path, servers)
    replica = plain(tmp_path, servers, "--replicaof", "127.0.0.1", str(master.port))
    wait_until("replica in sync", lambda: "master_link_status:up" in cli(replica.port, "INFO", "replication"))
    s = sentinel(tmp_path, servers, master)
    wait_until("sentinel to see the replica",
               lambda: str(replica.port) in cli(s.port, "SENTINEL", "replicas", "mymaster"))
    # Fail closed so a request the limiter could not check is a 503, never a free pass.
    gw = gateway_factory(config(mock, sentinel_table(s), fault_tolerant=False))
    post = lambda: gw.http.post("/chat", json=chat(max_tokens=1000), headers={"apikey": KEY})
    for _ in range(5):
        assert post().status_code == 200
    wait_until("the replica to catch up", lambda: cli(replica.port, "--scan", "--pattern", "tollgate:rl:*").strip())

    assert cli(s.port, "SENTINEL", "failover", "mymaster").strip() == "OK"
    wait_until("the replica's promotion",
               lambda: str(replica.port) in cli(s.port, "SENTINEL", "get-master-addr-by-name", "mymaster")
               and "role:master" in cli(replica.port, "INFO", "replication"))
    # Once the old master is demoted, the gateway's connection to it answers READONLY.
    wait_until("the old master's demotion", lambda: "role:slave" in cli(master.port, "INFO", "replication"))
    codes = []
    for _ in range(40):
        codes.append(post().status_code)
        if codes[-1] == 429:
            break
        time.sleep(0.1)
    # About 5,000 tokens were spent before the failover: at most the remaining ~5 fit.
    assert 429 in codes, f"the budget must hold on the new master: {codes}"
    assert codes.count(200) <= 5, codes
    assert set(codes) <= {200, 429, 503}, codes
    assert gw.proc.poll() is None
    # The gateway runs its scripts on the promoted node now (replication alone copies
    # the scripts' effects, not EVALSHA calls).
    stats = cli(replica.port, "INFO", "commandstats")
    assert "cmdstat_evalsha" in stats or "cmdstat_eval:" in stats, stats
