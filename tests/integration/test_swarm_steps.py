"""The swarm steps (scripts/swarm-*.sh) against real Docker engines in a real swarm.

A manager and two workers, each a Docker engine nested in a privileged container, on the tests'
OWN outer dockerd (socket /run/jhcswi-docker.sock, data under /var/lib/jhcswi-docker), never the
shared engine: nothing here touches the shared engine's swarm state. The outer dockerd runs
privileged containers through tests/integration/jhcswi/runtime.sh (this machine's bounding set
lacks CAP_SYS_RESOURCE; DESIGN.md section 5). Everything created is named jhcswi-*.

What is exercised for real: the scripts' logic and every docker command they run on the nodes
(swarm init, join token, join, idempotent reruns, drain with a task that takes time to stop, the
bounded wait failing and passing, leave, node rm, dissolve). What is not: the SSH transport (a
shim enters the node containers with `docker exec`; the ProxyCommand the scripts build is checked
in tests/test_workers.py), and the NFS export (this kernel has no nfs filesystem).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_helpers import ensure_base_image, running_engine

HERE = Path(__file__).resolve().parent / "jhcswi"
REPO = HERE.parents[2]
SOCK = "unix:///run/jhcswi-docker.sock"
PIDFILE = Path("/run/jhcswi-docker.pid")
# Tagged by its Dockerfile, so a changed recipe is rebuilt instead of a stale cache being used.
NODE_IMAGE = "jhcswi/node:" + hashlib.sha256((HERE / "Dockerfile").read_bytes()).hexdigest()[:12]
NETWORK = "jhcswi-net"
# The tests' dockerd gets a default bridge of its own: with `--bridge=none` dockerd deletes the
# host's docker0 at start (moby daemon/daemon_unix.go, removeDefaultBridgeInterface), which cut
# the shared engine's default network from under every test that ran after, or beside, this one.
BRIDGE, BRIDGE_ADDRESS = "jhcswi0", "10.214.0.1/24"
NODES = ("jhcswi-manager", "jhcswi-w1", "jhcswi-w2")
BUILD_LOG = Path("/tmp/jhcswi-build.log")


def outer(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "-H", SOCK, *args], capture_output=True, text=True,
                          check=check, timeout=600, **kw)


def on(node: str, *args: str, check: bool = True) -> str:
    return outer("exec", node, *args, check=check).stdout.strip()


def _answers() -> bool:
    return outer("info", check=False).returncode == 0


@pytest.fixture(scope="module")
def outer_engine() -> Iterator[None]:
    """The tests' own dockerd (started here, stopped at the end; its image cache is kept)."""
    engine = None
    if not _answers():
        if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
            subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
            subprocess.run(["ip", "address", "add", BRIDGE_ADDRESS, "dev", BRIDGE], check=True)
        subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
        log = open("/tmp/jhcswi-dockerd.log", "ab")
        engine = subprocess.Popen(
            ["dockerd", "--data-root=/var/lib/jhcswi-docker", "--exec-root=/run/jhcswi-exec",
             f"--pidfile={PIDFILE}", "-H", SOCK, "--iptables=false", f"--bridge={BRIDGE}",
             "--storage-driver=overlay2", f"--add-runtime=jhcswi={HERE / 'runtime.sh'}",
             "--default-runtime=jhcswi"], stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while not _answers():
            assert time.monotonic() < deadline, "the tests' dockerd did not answer in 60 s"
            time.sleep(1)
    try:
        yield
    finally:
        if engine is not None:
            # Reaped here: an unreaped child stays in /proc as a zombie, and waiting for its
            # /proc entry to go cost the full 60 s although dockerd exits within a second.
            engine.terminate()
            try:
                engine.wait(timeout=60)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait()
            subprocess.run(["ip", "link", "delete", BRIDGE], check=False)


@pytest.fixture(scope="module")
def nodes(outer_engine: None) -> Iterator[dict[str, str]]:
    """container name → address on jhcswi-net, each running its own dockerd."""
    if outer("image", "inspect", NODE_IMAGE, check=False).returncode != 0:
        with running_engine() as shared:  # the suite's registry-free base, built if missing
            base = ensure_base_image(shared, BUILD_LOG)
        if outer("image", "inspect", base, check=False).returncode != 0:
            save = subprocess.Popen(["docker", "save", base], stdout=subprocess.PIPE)
            outer("load", stdin=save.stdout)
            assert save.wait() == 0
        outer("build", "--network", "host", "-t", NODE_IMAGE, str(HERE))
    _remove_nodes()
    outer("network", "create", "--subnet", "10.213.0.0/24", NETWORK)
    try:
        for name in NODES:
            outer("run", "-d", "--privileged", "--name", name, "--hostname", name,
                  "--network", NETWORK, "-v", f"{name}-lib:/var/lib/docker", NODE_IMAGE)
        addresses = {}
        for name in NODES:
            deadline = time.monotonic() + 60
            while on(name, "docker", "info", check=False) == "":
                assert time.monotonic() < deadline, f"{name}: dockerd did not start"
                time.sleep(0.5)
            addresses[name] = outer("inspect", "-f", "{{(index .NetworkSettings.Networks "
                                    f'"{NETWORK}").IPAddress}}}}', name).stdout.strip()
        yield addresses
    finally:
        _remove_nodes()


def _remove_nodes() -> None:
    for name in NODES:
        outer("rm", "-f", "-v", name, check=False)
        outer("volume", "rm", f"{name}-lib", check=False)
    outer("network", "rm", NETWORK, check=False)


def step(script: str, nodes: dict[str, str], worker: str | None = None, stdin: str = "",
         **extra: str) -> subprocess.CompletedProcess:
    """Runs a step script as pulumi-command would: bash, environment, stdin; ssh is the shim."""
    env = {**os.environ, "JHC_SSH": str(HERE / "ssh-shim.sh"), "JHCSWI_DOCKER_HOST": SOCK,
           "JHCSWI_NODES": " ".join(f"{ip}={name}" for name, ip in nodes.items()),
           "JHC_MANAGER_TARGET": f"admin@{nodes['jhcswi-manager']}",
           "JHC_MANAGER_SSH_OPTS": "-o BatchMode=yes -o ControlPath=~/.ssh/jhc-x-%C",
           "JHC_ADVERTISE_ADDR": nodes["jhcswi-manager"], "JHC_REGISTRY_PORT": "5000",
           "JHC_MANAGER_ADDR": nodes["jhcswi-manager"], **extra}
    if worker:
        env["JHC_WORKER_TARGET"] = f"admin@{nodes[worker]}"
        env["JHC_WORKER_SSH_OPTS"] = "-o BatchMode=yes"
    return subprocess.run(["bash", str(REPO / "scripts" / script)], input=stdin, env=env,
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def node_ls() -> dict[str, tuple[str, str]]:
    lines = on("jhcswi-manager", "docker", "node", "ls", "--format",
               "{{.ID}} {{.Hostname}} {{.Status}} {{.Availability}}").splitlines()
    return {parts[0]: (parts[1], parts[2]) for parts in (line.split() for line in lines)}


def live_restore(node: str) -> str:
    return on(node, "docker", "info", "--format", "{{.LiveRestoreEnabled}}")


def test_init_join_drain_leave_dissolve(nodes: dict[str, str]) -> None:
    # The main host's engine as the bootstrap leaves it: live-restore on, which swarm refuses.
    manager = "jhcswi-manager"
    on(manager, "sh", "-c", "echo '{\"live-restore\": true}' > /etc/docker/daemon.json && "
       "pkill -HUP -x dockerd")
    _wait(lambda: live_restore(manager) == "true", 30)
    registry = f"{nodes[manager]}:5000"

    # --- init: a new swarm, the token on stdout only
    first = step("swarm-init.sh", nodes)
    assert first.returncode == 0, first.stderr
    assert live_restore(manager) == "false"
    daemon = json.loads(on(manager, "cat", "/etc/docker/daemon.json"))
    assert daemon["insecure-registries"] == [registry]
    assert registry in on(manager, "docker", "info", "--format", "{{json .RegistryConfig}}")
    token = first.stdout.strip()
    assert re.fullmatch(r"SWMTKN-1-[a-z0-9]+-[a-z0-9]+", token), first.stdout
    assert token not in first.stderr  # stderr is what the step logs
    state = on("jhcswi-manager", "docker", "info", "--format",
               "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeAddr}}")
    assert state == f"active true {nodes['jhcswi-manager']}"
    again = step("swarm-init.sh", nodes)
    assert again.returncode == 0 and again.stdout.strip() == token
    assert "already the swarm's manager" in again.stderr
    # A manager on another address is refused, not re-initialised.
    moved = step("swarm-init.sh", nodes, JHC_ADVERTISE_ADDR="10.213.0.250")
    assert moved.returncode != 0 and "advertises" in moved.stderr

    # --- join: both workers, idempotently; a wrong token fails
    bad = step("swarm-join.sh", nodes, "jhcswi-w1", stdin="not-a-token\n")
    assert bad.returncode != 0 and "no worker join token" in bad.stderr
    ids = {}
    for worker in ("jhcswi-w1", "jhcswi-w2"):
        joined = step("swarm-join.sh", nodes, worker, stdin=token + "\n")
        assert joined.returncode == 0, joined.stderr
        assert token not in joined.stdout + joined.stderr
        ids[worker] = joined.stdout.strip()
    listed = node_ls()
    assert {listed[ids[w]][0] for w in ids} == {"jhcswi-w1", "jhcswi-w2"}
    assert all(listed[ids[w]][1] == "Ready" for w in ids)
    rerun = step("swarm-join.sh", nodes, "jhcswi-w1", stdin=token + "\n")
    assert rerun.returncode == 0 and rerun.stdout.strip() == ids["jhcswi-w1"]
    assert "already worker" in rerun.stderr and len(node_ls()) == 3

    # --- a "user server" on w1 that takes 6 s to stop (sleep as PID 1 ignores SIGTERM), and a
    # global service with a task on each worker.
    image = _tiny_image_on_workers()
    on("jhcswi-manager", "docker", "service", "create", "--detach", "--name", "jhcswi-server",
       "--no-resolve-image", "--endpoint-mode", "dnsrr", "--stop-grace-period", "6s",
       "--constraint", "node.hostname==jhcswi-w1", image, "/bin/sleep", "3600")
    on("jhcswi-manager", "docker", "service", "create", "--detach", "--name", "jhcswi-global",
       "--no-resolve-image", "--endpoint-mode", "dnsrr", "--mode", "global",
       "--constraint", "node.role==worker", image, "/bin/sleep", "3600")
    _wait(lambda: _running_on("jhcswi-w1") == 2 and _running_on("jhcswi-w2") == 1, 90)

    # --- the bounded wait: too short a timeout fails and keeps the node (the VM is kept)
    leave = {"PULUMI_COMMAND_STDOUT": ids["jhcswi-w1"] + "\n"}
    short = step("swarm-leave.sh", nodes, "jhcswi-w1", **leave, JHC_DRAIN_TIMEOUT="1")
    assert short.returncode != 0 and "still on node" in short.stderr, short.stderr
    assert ids["jhcswi-w1"] in node_ls()
    # --- then the real drain: nothing runs on w1 any more, w2 untouched, w1 out of the swarm
    drained = step("swarm-leave.sh", nodes, "jhcswi-w1", **leave, JHC_DRAIN_TIMEOUT="60")
    assert drained.returncode == 0, drained.stderr
    assert _running_on("jhcswi-w1") == 0
    assert on("jhcswi-w1", "docker", "ps", "-q") == ""
    assert _running_on("jhcswi-w2") == 1
    assert ids["jhcswi-w1"] not in node_ls()
    assert on("jhcswi-w1", "docker", "info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive"
    # A second delete (a retried pulumi up) finds nothing to do.
    gone = step("swarm-leave.sh", nodes, "jhcswi-w1", **leave)
    assert gone.returncode == 0 and "no longer in the swarm" in gone.stderr

    # --- a new join token (hostWorkersJoinTokenGeneration): rotated once per generation; the
    # old token no longer joins, the new one does; the worker already in (w2) stays
    rotated = step("swarm-init.sh", nodes, JHC_JOIN_TOKEN_GENERATION="1")
    assert rotated.returncode == 0, rotated.stderr
    new_token = rotated.stdout.strip()
    assert re.fullmatch(r"SWMTKN-1-[a-z0-9]+-[a-z0-9]+", new_token) and new_token != token
    assert "rotating" in rotated.stderr and new_token not in rotated.stderr
    same = step("swarm-init.sh", nodes, JHC_JOIN_TOKEN_GENERATION="1")
    assert same.returncode == 0 and same.stdout.strip() == new_token
    assert "rotating" not in same.stderr
    assert node_ls()[ids["jhcswi-w2"]][1] == "Ready"
    # the join step of a joined worker reruns with the new token on its stdin: a no-op
    kept = step("swarm-join.sh", nodes, "jhcswi-w2", stdin=new_token + "\n")
    assert kept.returncode == 0 and kept.stdout.strip() == ids["jhcswi-w2"], kept.stderr
    refused_old = step("swarm-join.sh", nodes, "jhcswi-w1", stdin=token + "\n")
    assert refused_old.returncode != 0 and token not in refused_old.stderr
    rejoined = step("swarm-join.sh", nodes, "jhcswi-w1", stdin=new_token + "\n")
    assert rejoined.returncode == 0, rejoined.stderr
    w1 = rejoined.stdout.strip()
    assert node_ls()[w1] == ("jhcswi-w1", "Ready")
    out_again = step("swarm-leave.sh", nodes, "jhcswi-w1", PULUMI_COMMAND_STDOUT=w1)
    assert out_again.returncode == 0, out_again.stderr

    # --- back to one host: dissolving refuses while a worker remains
    refused = step("swarm-dissolve.sh", nodes)
    assert refused.returncode != 0 and "still in the swarm" in refused.stderr
    step_ok = step("swarm-leave.sh", nodes, "jhcswi-w2",
                   PULUMI_COMMAND_STDOUT=ids["jhcswi-w2"])
    assert step_ok.returncode == 0, step_ok.stderr
    dissolved = step("swarm-dissolve.sh", nodes)
    assert dissolved.returncode == 0, dissolved.stderr
    assert on("jhcswi-manager", "docker", "info", "--format",
              "{{.Swarm.LocalNodeState}}") == "inactive"
    # Back to the single host's engine settings.
    assert live_restore(manager) == "true"
    assert "insecure-registries" not in json.loads(
        on(manager, "cat", "/etc/docker/daemon.json"))


def _tiny_image_on_workers() -> str:
    """An image with /bin/sleep only, made on the manager and loaded into both workers, so the
    services reference it by id and no node looks for a registry."""
    on("jhcswi-manager", "sh", "-c",
       "rm -rf /tmp/r && mkdir -p /tmp/r/bin && cp /bin/sleep /tmp/r/bin/ && "
       "for l in $(ldd /bin/sleep | grep -o '/lib[^ ]*'); do mkdir -p /tmp/r$(dirname $l) && "
       "cp $l /tmp/r$l; done && tar -C /tmp/r -c . | docker import - jhcswi/sleep:1 >/dev/null")
    image = on("jhcswi-manager", "docker", "image", "inspect", "-f", "{{.Id}}", "jhcswi/sleep:1")
    for worker in ("jhcswi-w1", "jhcswi-w2"):
        subprocess.run(f"docker -H {SOCK} exec jhcswi-manager docker save jhcswi/sleep:1 | "
                       f"docker -H {SOCK} exec -i {worker} docker load", shell=True, check=True,
                       capture_output=True, timeout=120)
    return image


def _running_on(node: str) -> int:
    return len([line for line in on(node, "docker", "ps", "--format", "{{.Names}}").splitlines()
                if line.startswith("jhcswi-")])


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(1)


def test_the_shared_engine_keeps_its_default_bridge(outer_engine: None) -> None:
    """The tests' own dockerd runs beside the shared engine and must leave its network alone."""
    with running_engine() as shared:
        base = ensure_base_image(shared, BUILD_LOG)
        assert shared.containers.run(base, ["echo", "reached"], remove=True) == b"reached\n"
