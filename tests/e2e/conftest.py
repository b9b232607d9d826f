"""The local stack as the program declares it, applied to a real Docker engine (tests/e2e).
(The deploy/teardown body is tests/e2e/deployment.py, shared with bench/deployed_latency.py.)

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
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

from deployment import (  # noqa: E402
    Deployment,
    deployed,
    free_port,
)
from deployment import remove_leftovers as _remove_leftovers  # noqa: E402
from deployment import user_containers as _user_containers  # noqa: E402
from docker_helpers import running_engine  # noqa: E402

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


def base_config() -> dict[str, Any]:
    return {"groups": [{"name": "physics"}, {"name": "students"}, {"name": "chemistry"}],
            "users": USERS, "allowedGroups": ["physics", "students"], "images": IMAGES}


def user_containers(client: docker.DockerClient, network: str) -> list[Any]:
    """Containers the hub spawned on `network` (not in the applier's state)."""
    return _user_containers(client, network, PREFIX)


def remove_leftovers(client: docker.DockerClient) -> None:
    _remove_leftovers(client, PREFIX)


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
    with deployed(engine, STACK, tmp_path_factory.mktemp("e2e-data"), base_config(),
                  BUILD_LOG) as deployment:
        yield deployment


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
