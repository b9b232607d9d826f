"""The local stack as the program declares it, applied to a real Docker engine (tests/e2e).

Why: every other test proves one service at a time; here the resource graph of Pulumi.local.yaml
(recorded under mocks, with freshly generated random secrets) runs for real — images built from
the project's Dockerfiles, containers with the declared env, uploads, mounts, networks, aliases —
and is used the way a person uses it: through Caddy, in a real browser.

The last scenario tears the stack down keeping its data (`deployment.applier.destroy()`: the
program's cleanup command removes the user servers, bind-mounted data stays), clears the secret
store and applies again: every service must converge to the new secrets at start.

Isolation on a shared engine: stack name "e2e" (the program names everything jhc-e2e-...), a
data directory under pytest's tmp, Caddy on free loopback ports, user names no other suite uses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

from applier import Applier, Report  # noqa: E402
from docker_helpers import running_engine  # noqa: E402
from standins import ensure_upstream  # noqa: E402

from harness import Run, plain, run_program  # noqa: E402

STACK = "e2e"
PREFIX = f"jhc-{STACK}"
ARTIFACTS = Path(os.environ.get("JHC_E2E_ARTIFACTS", HERE.parents[1] / "artifacts" / "e2e"))
BUILD_LOG = Path(os.environ.get("JHC_E2E_BUILD_LOG", "/tmp/jhc-e2e-build.log"))

#: On top of Pulumi.local.yaml: a physicist, a student (another image menu), a chemist outside
#: allowedGroups, next to the stack's own admin "demo". Names unused by the other suites, since
#: DockerSpawner names user containers jupyter-<user> on the shared engine.
USERS: list[dict[str, Any]] = [
    {"name": "demo", "fullName": "Demo Admin", "admin": True},
    {"name": "nora", "fullName": "Nora Physicist", "groups": ["physics"]},
    {"name": "sam", "fullName": "Sam Student", "groups": ["students"]},
    {"name": "olga", "fullName": "Olga Chemist", "groups": ["chemistry"]},
]
IMAGES: list[dict[str, Any]] = [
    {"name": "minimal", "displayName": "Python (minimal)", "path": "minimal"},
    {"name": "scipy", "displayName": "SciPy (physics)", "path": "scipy", "groups": ["physics"]},
    {"name": "r", "displayName": "R (students)", "path": "r", "groups": ["students"]},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@dataclass
class Deployment:
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

    def declare(self, config: dict[str, Any] | None = None) -> Run:
        """The program's graph for this deployment's config (or another one) under mocks."""
        return declared(self.data_dir, config or self.config, self.secret_store)

    def apply(self, config: dict[str, Any]) -> Report:
        self.config = config
        self.run = self.declare(config)
        self.report = self.applier.apply(self.run)
        self.passwords = plain(self.run.outputs["initialPasswords"])
        wait_for_hub(self)
        return self.report


def declared(data_dir: Path, config: dict[str, Any], store: dict[str, str]) -> Run:
    return run_program("local", config, stack_name=STACK, secret_store=store)


def base_config(data_dir: Path, https_port: int, http_port: int) -> dict[str, Any]:
    return {"localDataDir": str(data_dir), "localHttpsPort": https_port,
            "localHttpPort": http_port,
            "groups": [{"name": "physics"}, {"name": "students"}, {"name": "chemistry"}],
            "users": USERS, "allowedGroups": ["physics", "students"], "images": IMAGES}


def caddy_root_ca(data_dir: Path) -> Path:
    """Caddy's internal CA root, kept on the data directory (its /data = state/caddy)."""
    return data_dir / "state" / "caddy" / "caddy" / "pki" / "authorities" / "local" / "root.crt"


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


def user_containers(client: docker.DockerClient, network: str) -> list[Any]:
    """Containers the hub spawned on the stack's frontend network (not in the applier's state)."""
    try:
        net = client.networks.get(network)
    except docker.errors.NotFound:
        return []
    net.reload()
    return [c for c in net.containers if not c.name.startswith(PREFIX)]


def remove_leftovers(client: docker.DockerClient) -> None:
    """Containers and networks of an earlier e2e session that was killed before its teardown.
    Only names this suite owns: the jhc-e2e- prefix and user servers on jhc-e2e-frontend."""
    for container in user_containers(client, f"{PREFIX}-frontend"):
        container.remove(force=True)
    for container in client.containers.list(all=True, filters={"name": f"^{PREFIX}-"}):
        container.remove(force=True)
    for network in client.networks.list():
        if network.name in (f"{PREFIX}-frontend", f"{PREFIX}-backend"):
            network.remove()


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """The Docker engine (docker_helpers.running_engine)."""
    try:
        with running_engine(timeout=900) as client:
            yield client
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def deployment(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    """The local stack, applied once per session; torn down at the end (data dir removed too)."""
    remove_leftovers(engine)
    data_dir = tmp_path_factory.mktemp("e2e-data")
    https_port, http_port = free_port(), free_port()
    applier = Applier(engine, lambda name: ensure_upstream(engine, name, BUILD_LOG), BUILD_LOG)
    store: dict[str, str] = {}
    config = base_config(data_dir, https_port, http_port)
    deployed = Deployment(data_dir, https_port, http_port, config, store, applier,
                          declared(data_dir, config, store), Report(), caddy_root_ca(data_dir))
    try:
        deployed.apply(config)
        yield deployed
    finally:
        try:
            # The program's destroy-time cleanup command removes the user servers.
            applier.destroy()
        finally:
            remove_leftovers(engine)  # only what a failed destroy left behind
            shutil.rmtree(data_dir, ignore_errors=True)
            # LocalHost's default backup repository, a sibling of the data directory.
            shutil.rmtree(f"{data_dir}-backups", ignore_errors=True)


@pytest.fixture()
def browser(deployment: Deployment, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """browser(): a fresh headless Chromium that trusts the deployment's CA (and nothing else
    extra), via an NSS database in a temporary HOME — as a laptop would after importing it.
    It runs in a network namespace of its own (chromedriver-netns.sh says why)."""
    from selenium import webdriver

    processes: list[subprocess.Popen[bytes]] = []
    drivers: list[Any] = []

    def spawn(*args: str, env: dict[str, str] | None = None) -> None:
        processes.append(subprocess.Popen(args, env=env, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def make() -> Any:
        home = tmp_path / f"home{len(drivers)}"
        nssdb = home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-n", "jhc-e2e-caddy-root",
                        "-t", "C,,", "-i", str(deployment.ca_file)], check=True)
        sockets = home / "sockets"
        sockets.mkdir()
        driver_port = free_port()
        spawn("socat", f"UNIX-LISTEN:{sockets}/site.sock,fork",
              f"TCP:127.0.0.1:{deployment.https_port}")
        spawn(str(HERE / "chromedriver-netns.sh"), str(sockets), str(deployment.https_port),
              str(driver_port), env={**os.environ, "HOME": str(home)})
        deadline = time.monotonic() + 30
        while not (sockets / "driver.sock").exists():
            assert time.monotonic() < deadline, "chromedriver did not start in its namespace"
            time.sleep(0.1)
        spawn("socat", f"TCP-LISTEN:{driver_port},bind=127.0.0.1,fork,reuseaddr",
              f"UNIX-CONNECT:{sockets}/driver.sock")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-extensions", "--no-first-run",
                     "--window-size=1280,900", f"--user-data-dir={home / 'profile'}"):
            options.add_argument(flag)
        deadline = time.monotonic() + 30
        while True:
            try:
                driver = webdriver.Remote(f"http://127.0.0.1:{driver_port}", options=options)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        driver.set_page_load_timeout(120)
        drivers.append(driver)
        return driver

    try:
        yield make
    finally:
        for driver in drivers:
            with contextlib.suppress(Exception):
                driver.quit()
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
