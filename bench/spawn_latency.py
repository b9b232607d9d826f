"""Spawn latency of the platform against a bare JupyterHub + DockerSpawner, side by side.

Not a test: it prints figures. Both hubs spawn the same test notebook image on the same engine
and network, one after the other in one run:

- platform: the integration stack of tests/integration/stack.py (slapd bootstrapped and
  reconciled, PostgreSQL, configurable-http-proxy apart, JupyterHub with
  services/hub/jupyterhub_config.py and hub_environment(): LDAP login, Postgres state, pre-spawn
  hook, limits, hardening, home/shared/dataset mounts), with the stack's default limits;
- baseline: bench/baseline_jupyterhub_config.py (the jupyterhub-deploy-docker shape:
  DummyAuthenticator, sqlite, the hub starts its own proxy, no limits, no mounts).

Measured per stack: login -> server ready latency (form login with _xsrf, GET /hub/spawn, then
until /user/<name>/api answers through the proxy), median and p95 over N sequential spawns (each
server stopped before the next); then C concurrent logins + spawns: failures and total time.
Loopback and the bench's own containers only; every loop is bounded.

    venv/bin/python bench/spawn_latency.py [--sequential 20] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "integration")]

import docker  # noqa: E402
import stack  # noqa: E402
from docker_helpers import CI_DOCKER, ensure_notebook_image  # noqa: E402

BASELINE_CONFIG = REPO / "bench" / "baseline_jupyterhub_config.py"
# Both hubs get the same start timeout: 50 servers starting at once on 2 cores take minutes,
# and JupyterHub's defaults would count a slow machine as failed spawns.
START_TIMEOUT = 600
READY_TIMEOUT = START_TIMEOUT + 60.0
PASSWORD = "bench-password-not-secret"  # the baseline's DummyAuthenticator accepts anything


@dataclass
class Target:
    """One hub to measure: where users log in, and their passwords."""

    name: str
    url: str
    password: Callable[[str], str]
    admin_token: str
    # requests' `verify`: a CA file for HTTPS through Caddy (never False)
    verify: str | bool = True
    # the spawn form a person submits (its image menu), or None: GET /hub/spawn spawns
    spawn_form: dict[str, str] | None = None


@dataclass
class Result:
    sequential: list[float]
    concurrent_ok: int
    concurrent_failed: int
    concurrent_total: float
    concurrent_latencies: list[float]
    failures: list[str]
    #: per sequential spawn: (login, the spawn request, until the server answers) in seconds
    phases: list[tuple[float, float, float]] = field(default_factory=list)


ClientT = TypeVar("ClientT", stack.Browser, stack.TokenClient)


def client_for(target: Target, client: ClientT) -> ClientT:
    """A client that trusts what the target says (its CA file). requests lets the environment's
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's `verify`, so the environment is
    not consulted (no proxy either: the bench talks to loopback only)."""
    client.session.verify = target.verify
    client.session.trust_env = False
    return client


def login_and_spawn(target: Target, username: str,
                    phases: list[tuple[float, float, float]] | None = None) -> float:
    """Seconds from the login form to the user's server answering through the proxy (and
    Caddy, for a deployed stack): /user/<name>/api returns the server's version. `phases`
    gets the login, the spawn request (JupyterHub answers it once the server started, or after
    its slow_spawn_timeout) and the rest."""
    start = time.monotonic()
    browser = client_for(target, stack.Browser(target.url))
    response = browser.login(username, target.password(username))
    if response.status_code != 302:
        raise RuntimeError(f"login of {username}: HTTP {response.status_code}")
    logged_in = time.monotonic()
    if target.spawn_form is None:
        spawn = browser.session.get(f"{target.url}/hub/spawn", allow_redirects=False, timeout=120)
    else:
        spawn = browser.session.post(f"{target.url}/hub/spawn", allow_redirects=False,
                                     timeout=120,
                                     data={**target.spawn_form, "_xsrf": browser.xsrf()})
    if spawn.status_code not in (200, 302):
        raise RuntimeError(f"spawn of {username}: HTTP {spawn.status_code}")
    checked = time.monotonic()

    def ready() -> bool:
        nonlocal checked
        try:
            answer = browser.session.get(f"{target.url}/user/{username}/api",
                                         allow_redirects=False, timeout=5)
            if answer.status_code == 200 and "version" in answer.text:
                return True
        except stack.requests.RequestException:
            pass
        if time.monotonic() - checked > 2:  # fail fast when the hub gave up on the spawn
            checked = time.monotonic()
            me = browser.api("GET", "/user")
            if me.ok and "" not in me.json().get("servers", {}):
                raise RuntimeError(f"the hub gave up on {username}'s server")
        return False

    spawned = time.monotonic()
    stack.wait_until(ready, READY_TIMEOUT, f"{username}'s server", interval=0.25)
    end = time.monotonic()
    if phases is not None:
        phases.append((logged_in - start, spawned - logged_in, end - spawned))
    return end - start


def stop_servers(target: Target, names: list[str]) -> None:
    admin = client_for(target, stack.TokenClient(target.url, target.admin_token))
    for name in names:
        with contextlib.suppress(Exception):
            admin.api("DELETE", f"/users/{name}/server")
    for name in names:
        with contextlib.suppress(Exception):
            stack.wait_until(lambda n=name: not admin.user(n).get("servers"), 120,
                             f"{name}'s server to stop", interval=0.5)


def measure(target: Target, sequential: int, concurrent: int, prefix: str = "") -> Result:
    """N sequential login + spawn (each server stopped before the next), then C at once."""
    failures: list[str] = []
    latencies: list[float] = []
    phases: list[tuple[float, float, float]] = []
    for i in range(sequential):
        name = f"{prefix}seq{i:02d}"
        try:
            latencies.append(login_and_spawn(target, name, phases))
        except Exception as err:  # noqa: BLE001  a failed spawn is a figure, not a crash
            failures.append(f"{name}: {err}")
        stop_servers(target, [name])
    names = [f"{prefix}con{i:02d}" for i in range(concurrent)]
    ok: list[float] = []
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(concurrent, 1)) as pool:
        futures = {pool.submit(login_and_spawn, target, name): name for name in names}
        for future in as_completed(futures):
            try:
                ok.append(future.result())
            except Exception as err:  # noqa: BLE001
                failures.append(f"{futures[future]}: {err}")
    total = time.monotonic() - start
    stop_servers(target, names)
    return Result(latencies, len(ok), concurrent - len(ok), total, ok, failures, phases)


def bench_users(sequential: int, concurrent: int, prefix: str = "") -> list[str]:
    return [f"{prefix}seq{i:02d}" for i in range(sequential)] + \
        [f"{prefix}con{i:02d}" for i in range(concurrent)]


@contextlib.contextmanager
def platform_target(root: Path, client: docker.DockerClient, image: str,
                    users: list[str], cpu_limit: str, mem_limit: str | None = None
                    ) -> Iterator[Target]:
    config = {
        "cpuLimit": cpu_limit,
        **({"memLimit": mem_limit} if mem_limit else {}),
        "groups": [{"name": "bench"}],
        "users": [{"name": "benchadmin", "admin": True, "groups": ["bench"]}]
        + [{"name": name, "groups": ["bench"]} for name in users],
        "images": [{"name": "minimal", "displayName": "Minimal", "path": "minimal"}],
    }
    platform = stack.start_platform(root, client, image, config,
                                    hub_extra={"JHC_START_TIMEOUT": str(START_TIMEOUT)})
    try:
        browser = stack.Browser(platform.hub.url)
        if browser.login("benchadmin", platform.passwords["benchadmin"]).status_code != 302:
            raise RuntimeError("benchadmin cannot log in")
        yield Target("platform", platform.hub.url, platform.passwords.__getitem__,
                     browser.new_token("benchadmin"))
    finally:
        stack.stop_platform(platform)


@contextlib.contextmanager
def baseline_target(root: Path, client: docker.DockerClient, image: str, *,
                    mem_limit: str = "", cpu_limit: str = "",
                    start_timeout: int = START_TIMEOUT) -> Iterator[Target]:
    """The bare hub of baseline_jupyterhub_config.py on a network of its own; per-user limits
    only when given (bench/deployed_latency.py gives it the deployed stack's)."""
    network = stack.create_network(client, "jhc-bench-base")
    port, hub_port, api_port = stack.free_port(), stack.free_port(), stack.free_port()
    workdir = root / "baseline"
    workdir.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{stack.NPM_BIN}:{os.environ.get('PATH', '')}",
        "HOME": str(workdir), "LANG": "C.UTF-8",
        "BENCH_PORT": str(port), "BENCH_HUB_PORT": str(hub_port),
        "BENCH_PROXY_API_PORT": str(api_port), "BENCH_GATEWAY": network.gateway,
        "BENCH_CHP": str(stack.CHP), "BENCH_IMAGE": image, "BENCH_NETWORK": network.name,
        "BENCH_START_TIMEOUT": str(start_timeout),
        "BENCH_MEM_LIMIT": mem_limit, "BENCH_CPU_LIMIT": cpu_limit,
    }
    log = workdir / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(BASELINE_CONFIG)],
                                cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"baseline hub exited: {stack.tail(log)}")
            try:
                return stack.requests.get(f"{url}/hub/health", timeout=2).ok
            except stack.requests.RequestException:
                return False

        stack.wait_until(up, 90, "the baseline hub")
        browser = stack.Browser(url)
        if browser.login("benchadmin", PASSWORD).status_code != 302:
            raise RuntimeError("baseline login failed")
        yield Target("baseline", url, lambda _name: PASSWORD, browser.new_token("benchadmin"))
    finally:
        stack.stop_process(proc, timeout=60)  # cleanup_servers: the hub stops its containers
        network.stop()


@contextlib.contextmanager
def bench_engine() -> Iterator[tuple[docker.DockerClient, str]]:
    """The Docker engine (started when none answers, and then stopped again) and the test
    notebook image every bench spawns."""
    started = subprocess.run([str(CI_DOCKER), "start"], capture_output=True, text=True,
                             timeout=900, check=True).stdout.strip().splitlines()[-1:] == ["started"]
    client = docker.from_env(timeout=600)
    try:
        yield client, ensure_notebook_image(client, Path("/tmp/jhc-test-images.log"))
    finally:
        client.close()
        if started:
            subprocess.run([str(CI_DOCKER), "stop"], timeout=120, check=False)


def p95(values: list[float]) -> float:
    """The nearest-rank 95th percentile (NaN for no values)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def summary(result: Result, sequential: int) -> dict[str, float]:
    seq = result.sequential
    conc = result.concurrent_latencies
    login, spawn, answer = (statistics.median(p) if p else float("nan")
                            for p in zip(*result.phases, strict=True)) if result.phases \
        else (float("nan"),) * 3
    return {"median": statistics.median(seq) if seq else float("nan"), "p95": p95(seq),
            "login": login, "spawn": spawn, "answer": answer,
            "seq_total": sum(seq), "seq_n": len(seq), "seq_failed": sequential - len(seq),
            "ok": result.concurrent_ok, "failed": result.concurrent_failed,
            "total": result.concurrent_total,
            "conc_median": statistics.median(conc) if conc else float("nan"),
            "conc_p95": p95(conc)}


def report(results: dict[str, Result], sequential: int, concurrent: int,
           title: str = "login -> server answering through the proxy") -> None:
    """A table of both stacks side by side; the ratio is platform / baseline."""
    rows = {name: summary(result, sequential) for name, result in results.items()}
    print(f"\nspawn latency, {title} ({sequential} sequential, {concurrent} concurrent; "
          f"{os.cpu_count()} CPUs)")
    print(f"{'':36}{'platform':>12}{'baseline':>12}{'ratio':>9}")
    lines = [("sequential median (s)", "median"), ("  median of the login (s)", "login"),
             ("  of the spawn request (s)", "spawn"), ("  then until it answers (s)", "answer"),
             ("sequential p95 (s)", "p95"),
             ("sequential total (s)", "seq_total"), ("sequential spawns ok", "seq_n"),
             ("sequential failed", "seq_failed"), ("concurrent ok", "ok"),
             ("concurrent failed", "failed"), ("concurrent total time (s)", "total"),
             ("concurrent median latency (s)", "conc_median"),
             ("concurrent p95 latency (s)", "conc_p95")]
    for label, key in lines if concurrent else lines[:8]:
        ours, base = rows["platform"][key], rows["baseline"][key]
        ratio = f"{ours / base:8.2f}x" if base else "       -"
        print(f"{label:36}{ours:12.2f}{base:12.2f}{ratio}")
    for name, result in results.items():
        for failure in result.failures[:10]:
            print(f"  {name} failure: {failure[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=20, choices=range(1, 101),
                        metavar="N", help="sequential spawns per stack (1-100)")
    parser.add_argument("--concurrent", type=int, default=50, choices=range(0, 101),
                        metavar="C", help="concurrent logins + spawns per stack (0-100)")
    parser.add_argument("--cpu-limit", default="1", metavar="CORES",
                        help="the platform's cpuLimit per user server (the stack default: 1)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (Docker engine, slapd, PostgreSQL as the postgres account)")
        return 2
    results: dict[str, Result] = {}
    with bench_engine() as (client, image):
        with tempfile.TemporaryDirectory(prefix="jhc-bench-") as tmp:
            root = Path(tmp)
            users = bench_users(args.sequential, args.concurrent)
            with platform_target(root / "platform", client, image, users,
                                 args.cpu_limit) as target:
                results["platform"] = measure(target, args.sequential, args.concurrent)
            with baseline_target(root, client, image) as target:
                results["baseline"] = measure(target, args.sequential, args.concurrent)
    report(results, args.sequential, args.concurrent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
