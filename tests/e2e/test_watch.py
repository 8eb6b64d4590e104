"""`server.watch`: the gateway reloads its config file when it changes, with no
signal, including the way Kubernetes updates a mounted ConfigMap (a `..data`
symlink swapped atomically); a broken file is refused as a bad SIGHUP would be."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from configs import llm_config, poll, server_table
from conftest import Gateway, bin_dir, chat, free_port


def config(mock, key: str, *, watch: bool = True) -> str:
    return llm_config(mock, server=server_table(watch=watch), consumers=f"""
[[consumers]]
username = "alice"
keyauth_credentials = [{{ key = "{key}" }}]
""")


def status(gw) -> dict:
    return httpx.get(f"{gw.admin_url}/status", timeout=5).json()["reload"]


def reload_count(gw, result: str) -> int:
    for line in gw.metrics().splitlines():
        if line.startswith(f'tollgate_config_reloads_total{{result="{result}"}}'):
            return int(float(line.split()[-1]))
    return 0


def answers(gw, key: str) -> int:
    return gw.http.post("/chat", json=chat(), headers={"apikey": key}).status_code


def test_a_rewritten_file_is_reloaded_and_a_broken_one_refused(mock, gateway_factory):
    gw = gateway_factory(config(mock, "old-key"))
    assert answers(gw, "old-key") == 200

    gw.config_path.write_text(gw.config_path.read_text().replace("old-key", "new-key"))
    assert poll(lambda: answers(gw, "new-key") == 200, timeout=5), gw.stderr()
    assert answers(gw, "old-key") == 401
    assert reload_count(gw, "success") == 1
    assert 'trigger="watch"' in gw.stderr()

    gw.config_path.write_text(gw.config_path.read_text() + "\nunknown_field = 1\n")
    assert poll(lambda: reload_count(gw, "failure") == 1, timeout=5), gw.stderr()
    st = status(gw)
    assert st["last_reload_ok"] is False
    assert "unknown_field" in st["last_reload_error"]
    assert answers(gw, "new-key") == 200, "a broken file changes nothing"
    # Not retried while the file stays as it is.
    time.sleep(2.5)
    assert reload_count(gw, "failure") == 1

    # Fixed, with one more listener: the rest applies, listeners wait for a restart.
    extra_port = free_port()
    fixed = gw.config_path.read_text().replace("\nunknown_field = 1\n", "\n").replace(
        f'listen = ["127.0.0.1:{gw.port}"]', f'listen = ["127.0.0.1:{gw.port}", "127.0.0.1:{extra_port}"]')
    gw.config_path.write_text(fixed)
    assert poll(lambda: reload_count(gw, "success") == 2, timeout=5), gw.stderr()
    assert status(gw)["last_reload_ok"] is True
    assert answers(gw, "new-key") == 200
    assert "take effect after a restart fields=listen" in gw.stderr()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{extra_port}/", timeout=2)


def test_without_watch_a_changed_file_waits_for_sighup(mock, gateway_factory):
    gw = gateway_factory(config(mock, "old-key", watch=False))
    gw.config_path.write_text(gw.config_path.read_text().replace("old-key", "new-key"))
    time.sleep(2.5)
    assert answers(gw, "old-key") == 200
    assert reload_count(gw, "success") == 0


class ConfigMapMount:
    """A folder laid out as the kubelet mounts a ConfigMap: `tollgate.toml` ->
    `..data/tollgate.toml`, `..data` -> a timestamped folder. An update writes a
    new folder, points `..data_tmp` at it, renames that over `..data` (atomic) and
    removes the old folder, so the file's path never changes but its target does."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir()
        self.generation = 0
        self.current: Path | None = None
        self.path = root / "tollgate.toml"

    def publish(self, text: str) -> None:
        self.generation += 1
        folder = self.root / f"..2026_01_01_00_00_0{self.generation}.{os.getpid()}"
        folder.mkdir()
        (folder / "tollgate.toml").write_text(text)
        os.symlink(folder.name, self.root / "..data_tmp")
        os.replace(self.root / "..data_tmp", self.root / "..data")
        if self.current is not None:
            shutil.rmtree(self.current)
        self.current = folder
        if not self.path.is_symlink():
            os.symlink("..data/tollgate.toml", self.path)


class MountedGateway(Gateway):
    """Like conftest's Gateway, on a config read through a ConfigMap mount."""

    def __init__(self, config_text: str, mount: ConfigMapMount, tmp: Path):
        self.port = free_port()
        self.admin_port = free_port()
        self.text = config_text.replace("@PORT@", str(self.port)).replace("@ADMIN_PORT@", str(self.admin_port))
        mount.publish(self.text)
        self.config_path = mount.path
        self.log_path = tmp / f"mounted-{self.port}.log"
        self.err_path = tmp / f"mounted-{self.port}.err"
        self.proc = subprocess.Popen(
            [str(bin_dir() / "tollgate"), "run", "-c", str(self.config_path)],
            stdout=open(self.log_path, "w"),
            stderr=open(self.err_path, "w"),
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self._wait_ready()
        self.http = httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture
def mounted(mock, tmp_path):
    mount = ConfigMapMount(tmp_path / "config")
    gw = MountedGateway(config(mock, "old-key"), mount, tmp_path)
    yield gw, mount
    gw.stop()


def test_a_configmap_symlink_swap_is_reloaded(mounted):
    gw, mount = mounted
    assert answers(gw, "old-key") == 200

    mount.publish(gw.text.replace("old-key", "new-key"))
    assert poll(lambda: answers(gw, "new-key") == 200, timeout=5), gw.stderr()
    assert answers(gw, "old-key") == 401

    mount.publish(gw.text.replace("old-key", "new-key").replace("[[consumers]]", "[[consumer]]"))
    assert poll(lambda: reload_count(gw, "failure") == 1, timeout=5), gw.stderr()
    st = status(gw)
    assert st["last_reload_ok"] is False
    assert "consumer" in st["last_reload_error"]
    assert answers(gw, "new-key") == 200, "the running config keeps serving"

    mount.publish(gw.text.replace("old-key", "third-key"))
    assert poll(lambda: answers(gw, "third-key") == 200, timeout=5), gw.stderr()
    assert reload_count(gw, "success") == 2
