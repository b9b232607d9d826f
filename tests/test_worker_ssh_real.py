"""The way the steps reach a worker, with the real OpenSSH client and two real sshd on loopback:
the manager (the jump host) and a worker, with the options the program declares for them (read
from a mock run with hostWorkers 1): pinned host keys per server, the manager's multiplexed
connection inside the ProxyCommand (its %C escaped), the worker reached only through it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_host_keys_real_ssh import REAL_SSH, Server, free_port

from harness import ROOT, run_program


@pytest.fixture()
def two_servers(tmp_path: Path) -> Iterator[tuple[Server, Server, Path]]:
    key = tmp_path / "client"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = (tmp_path / "client.pub").read_text()
    (tmp_path / "m").mkdir()
    (tmp_path / "w").mkdir()
    manager, worker = Server(tmp_path / "m", free_port(), pub), Server(tmp_path / "w", free_port(), pub)
    manager.start("hostkey-m")
    worker.start("hostkey-w")
    try:
        yield manager, worker, key
    finally:
        for s in (manager, worker):
            s.stop()


@REAL_SSH
def test_steps_reach_the_worker_only_through_the_manager(two_servers, tmp_path: Path) -> None:
    manager, worker, key = two_servers
    run = run_program("dev", overrides={"hostWorkers": 1, "sshPrivateKeyPath": str(key),
                                        "sshKnownHostsFile": str(tmp_path / "kh")})
    env = run.resources["jhc-worker-0-join"].plain["environment"]
    (tmp_path / "kh.d").mkdir()
    # ControlPath is under ~/.ssh (of the passwd entry, not $HOME), as ssh itself would create it.
    (Path(os.path.expanduser("~root")) / ".ssh").mkdir(mode=0o700, exist_ok=True)
    step_env = {
        **os.environ,
        "JHC_MANAGER_TARGET": "root@127.0.0.1", "JHC_WORKER_TARGET": "root@127.0.0.1",
        "JHC_MANAGER_SSH_OPTS": f"{env['JHC_MANAGER_SSH_OPTS']} -p {manager.port}",
        "JHC_WORKER_SSH_OPTS": f"{env['JHC_WORKER_SSH_OPTS']} -p {worker.port}"}

    def on(function: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", f"source scripts/lib/nodes.sh && {function} sh -c 'echo $SSH_CONNECTION'"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, env=step_env)

    manager_opts = [*env["JHC_MANAGER_SSH_OPTS"].split(), "-p", str(manager.port)]
    to_worker = on("on_worker")
    assert to_worker.returncode == 0, to_worker.stderr
    assert to_worker.stdout.split()[-1] == str(worker.port)
    # Only the jump opened the manager's multiplexed connection (the ProxyCommand's ssh, with the
    # manager's own ControlPath): the worker was reached through the manager.
    check = subprocess.run(["ssh", *manager_opts, "-O", "check", "root@127.0.0.1"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    to_manager = on("on_manager")
    assert to_manager.returncode == 0 and to_manager.stdout.split()[-1] == str(manager.port)
    # Each server's key is pinned in its own file (the worker's named after its server id).
    assert (tmp_path / "kh.d" / "jhc-worker-0-server-id").read_text().strip()
    assert (tmp_path / "kh.d" / "jhc-server-id").read_text().strip()
    subprocess.run(["ssh", *manager_opts, "-O", "exit", "root@127.0.0.1"], capture_output=True,
                   timeout=30)
