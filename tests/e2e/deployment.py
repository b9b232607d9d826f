"""The local stack as the program declares it, applied to a real engine: one reusable body.

Why a module: the e2e suite (conftest's session fixture) and bench/deployed_latency.py both
need "declare Pulumi.local.yaml under mocks with test-generated secrets, apply its Docker layer
with the applier, wait until the hub answers through Caddy, tear it all down again". One body
keeps the two from drifting apart.

Isolation on a shared engine: a stack name of the caller's (the program names everything
jhc-<stack>-...), a data directory of the caller's, Caddy on free loopback ports.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent, HERE.parent / "integration"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from applier import Applier, Report  # noqa: E402
from standins import ensure_upstream  # noqa: E402

from harness import Run, plain, run_program  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def caddy_root_ca(data_dir: Path) -> Path:
    """Caddy's internal CA root, kept on the data directory (its /data = state/caddy)."""
    return data_dir / "state" / "caddy" / "caddy" / "pki" / "authorities" / "local" / "root.crt"


@dataclass
class Deployment:
    stack: str
    data_dir: Path
    https_port: int
    http_port: int
    config: dict[str, Any]
    secret_store: dict[str, str]
    applier: Applier
    run: Run
    report: Report
    ca_file: Path
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def prefix(self) -> str:
        return f"jhc-{self.stack}"

    def declare(self, config: dict[str, Any] | None = None) -> Run:
        """The program's graph for this deployment's config (or another one) under mocks."""
        return run_program("local", config or self.config, stack_name=self.stack,
                           secret_store=self.secret_store)

    def apply(self, config: dict[str, Any]) -> Report:
        self.config = config
        self.run = self.declare(config)
        self.report = self.applier.apply(self.run)
        self.passwords = plain(self.run.outputs["initialPasswords"])
        wait_for_hub(self)
        return self.report


def wait_for_hub(deployment: Deployment, timeout: float = 180) -> None:
    """Through Caddy, verified with the deployment's own CA: the hub answers /hub/health."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if deployment.ca_file.exists():
            try:
                response = requests.get(f"{deployment.url}/hub/health", timeout=5,
                                        verify=str(deployment.ca_file))
                if response.status_code == 200:
                    return
                last = response.status_code
            except requests.RequestException as error:
                last = error
        time.sleep(1)
    raise AssertionError(f"hub not healthy through Caddy after {timeout}s: {last}")


def user_containers(client: docker.DockerClient, network: str, prefix: str) -> list[Any]:
    """Containers the hub spawned on the stack's frontend network (not in the applier's state)."""
    try:
        net = client.networks.get(network)
    except docker.errors.NotFound:
        return []
    net.reload()
    return [c for c in net.containers if not c.name.startswith(prefix)]


def remove_leftovers(client: docker.DockerClient, prefix: str) -> None:
    """Containers and networks of an earlier session of this stack that was killed before its
    teardown. Only names that stack owns: its jhc-<stack>- prefix and user servers on its
    frontend network."""
    for container in user_containers(client, f"{prefix}-frontend", prefix):
        container.remove(force=True)
    for container in client.containers.list(all=True, filters={"name": f"^{prefix}-"}):
        container.remove(force=True)
    for network in client.networks.list():
        if network.name in (f"{prefix}-frontend", f"{prefix}-backend"):
            network.remove()


@contextlib.contextmanager
def deployed(engine: docker.DockerClient, stack: str, data_dir: Path,
             overrides: dict[str, Any], build_log: Path) -> Iterator[Deployment]:
    """Pulumi.local.yaml plus `overrides` (data dir and free Caddy ports are added here),
    declared under mocks with fresh random secrets and applied to `engine`; yields once the
    hub answers through Caddy. Afterwards the program's destroy-time cleanup removes the user
    servers, then the stack's containers and networks go, and the data directory is deleted."""
    prefix = f"jhc-{stack}"
    remove_leftovers(engine, prefix)
    https_port, http_port = free_port(), free_port()
    applier = Applier(engine, lambda name: ensure_upstream(engine, name, build_log), build_log)
    store: dict[str, str] = {}
    config = {"localDataDir": str(data_dir), "localHttpsPort": https_port,
              "localHttpPort": http_port, **overrides}
    deployment = Deployment(stack, data_dir, https_port, http_port, config, store, applier,
                            Run({}, {}, set()), Report(), caddy_root_ca(data_dir))
    try:
        deployment.apply(config)
        yield deployment
    finally:
        try:
            # The program's destroy-time cleanup command removes the user servers.
            applier.destroy()
        finally:
            remove_leftovers(engine, prefix)  # only what a failed destroy left behind
            shutil.rmtree(data_dir, ignore_errors=True)
            # LocalHost's default backup repository, a sibling of the data directory.
            shutil.rmtree(f"{data_dir}-backups", ignore_errors=True)
