"""A second Docker engine that enforces network isolation, and the deployed topology replayed on it.

Why: Docker isolates bridge networks from each other and enforces `internal` with iptables rules
it installs itself (DOCKER-ISOLATION-STAGE-1/2 in the filter table's FORWARD chain). The shared
test engine runs `dockerd --iptables=false` (other suites reach containers from the host, and
several sessions share it), so on it a user container *can* reach the backend network. This
module starts a dockerd of its own with iptables on, inside a network namespace of its own
(`unshare --net`: its bridges, veths and iptables rules never touch the host's), with its own
data-root, exec-root, pidfile and socket, and stops it again.

The deployed topology (from the shared engine, as the applier and the real DockerSpawner made
it: every network's name and `internal` flag, every running container's networks and aliases,
and the TCP ports its processes really listen on) is recreated there with small listener
containers. Probes then connect from inside those containers. An "outside" network namespace
joined to the engine's by a veth pair stands for the LAN/internet, with a listener on
198.51.100.2 (TEST-NET-2; it exists only in that namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker_helpers import _remove_rootfs

OUTSIDE_IP = "198.51.100.2"
OUTSIDE_PORT = 9999
OUTSIDE_GATEWAY = "198.51.100.1"

#: One listener per port given on the command line (accepts and closes; bounded by the
#: container's life, which the replay ends).
LISTEN = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        s.accept()[0].close()
for port in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(port),), daemon=True).start()
threading.Event().wait()
"""

#: Connects to every (host, port) given as JSON on argv[1]; prints {"host:port": "connected" |
#: the error}. All at once, each with a 3 s timeout (a DROP rule shows as a timeout).
PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def one(target):
    host, port = target
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); return "connected"
    except OSError as error:
        return type(error).__name__
    finally:
        s.close()
targets = [tuple(t) for t in json.loads(sys.argv[1])]
with ThreadPoolExecutor(len(targets) or 1) as pool:
    results = list(pool.map(one, targets))
print(json.dumps({f"{h}:{p}": r for (h, p), r in zip(targets, results)}))
"""


@dataclass
class IsolatingEngine:
    """A dockerd with iptables on, in its own network namespace (pid = the daemon's)."""

    client: docker.DockerClient
    pid: int
    root: Path

    def in_netns(self, *command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", "-t", str(self.pid), "-n", *command], check=True,
                              capture_output=True, text=True, timeout=60, **kwargs)

    def iptables_rules(self) -> str:
        return self.in_netns("iptables", "-S").stdout


@contextlib.contextmanager
def isolating_engine(root: Path, timeout: float = 60) -> Iterator[IsolatingEngine]:
    """Starts the second engine under `root` (short paths: containerd's sockets live in the
    exec-root and unix socket paths are limited to 108 bytes); stops it and removes `root`."""
    root.mkdir(parents=True, exist_ok=True)
    sock = root / "docker.sock"
    pidfile = root / "dockerd.pid"
    log = root / "dockerd.log"
    # --iptables is dockerd's default; said explicitly since it is the point. No default bridge:
    # the replay creates the stack's networks only.
    script = ('ip link set lo up && exec dockerd --iptables=true --ip-forward=true '
              '--bridge=none --storage-driver=overlay2 '
              f'--data-root={root}/data --exec-root={root}/exec --pidfile={pidfile} '
              f'-H unix://{sock}')
    with log.open("wb") as out:
        process = subprocess.Popen(["unshare", "--net", "sh", "-c", script], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    client: docker.DockerClient | None = None
    try:
        deadline = time.monotonic() + timeout
        while client is None:
            if process.poll() is not None:
                raise RuntimeError(f"the isolating dockerd exited: {log.read_text()[-3000:]}")
            if sock.exists():
                with contextlib.suppress(docker.errors.DockerException):
                    # the client asks the server's API version when it is made
                    client = docker.DockerClient(base_url=f"unix://{sock}", timeout=300)
            if client is None and time.monotonic() > deadline:
                raise RuntimeError(f"the isolating dockerd did not answer in {timeout}s: "
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield IsolatingEngine(client, process.pid, root)
    finally:
        if client is not None:
            client.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)  # dockerd (sh exec'd it) stops its containers
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        _remove_rootfs(root)  # unmounts what a failed stop left mounted before deleting


def copy_image(source: docker.DockerClient, target: docker.DockerClient, tag: str) -> None:
    """`docker save | docker load` from the shared engine (no registry here)."""
    blob = b"".join(source.images.get(tag).save(named=True))
    target.images.load(blob)


@dataclass
class Replayed:
    """A deployed container recreated on the isolating engine."""

    name: str
    networks: dict[str, list[str]]          # network -> aliases
    ports: list[int]                        # TCP ports its real processes listen on
    addresses: dict[str, str] = field(default_factory=dict)  # network -> IP on the replay

    def only_on(self, network: str) -> bool:
        return set(self.networks) == {network}


LOOPBACK_HEX = ("00000000000000000000000001000000", "0000000000000000FFFF00000100007F")


def listening_ports(pid: int) -> list[int]:
    """TCP ports in LISTEN state in the network namespace of process `pid` (/proc/<pid>/net),
    except those bound to loopback (Docker's embedded DNS on 127.0.0.11, admin endpoints):
    nothing on a network can reach them."""
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].rsplit(":", 1)
            loopback = address.endswith("7F") if len(address) == 8 else address in LOOPBACK_HEX
            if fields[3] == "0A" and not loopback:  # 0A: TCP_LISTEN
                ports.add(int(port, 16))
    return sorted(ports)


def deployed_topology(engine: docker.DockerClient, networks: list[str]
                      ) -> tuple[dict[str, bool], list[Replayed]]:
    """network name -> internal, and every running container on those networks."""
    flags: dict[str, bool] = {}
    found: dict[str, Replayed] = {}
    for name in networks:
        network = engine.networks.get(name)
        flags[name] = bool(network.attrs.get("Internal"))
        for container in network.containers:
            container.reload()
            if container.status != "running":
                continue
            attached = container.attrs["NetworkSettings"]["Networks"]
            found[container.name] = Replayed(
                container.name,
                {net: [a for a in (info.get("Aliases") or []) if a != container.id[:12]]
                 for net, info in attached.items()},
                listening_ports(container.attrs["State"]["Pid"]))
    return flags, list(found.values())


def replay(iso: IsolatingEngine, image: str, flags: dict[str, bool],
           containers: list[Replayed]) -> None:
    """The same networks (name, internal) and containers (name, networks, aliases, listening
    ports) on the isolating engine; a container's first network at create, the rest connected
    (as DockerSpawner and the applier do)."""
    for name, internal in flags.items():
        iso.client.networks.create(name, driver="bridge", internal=internal)
    for item in containers:
        first, *rest = item.networks
        created = iso.client.api.create_container(
            image, ["python3", "-c", LISTEN, *map(str, item.ports)], name=item.name,
            host_config=iso.client.api.create_host_config(network_mode=first),
            networking_config=iso.client.api.create_networking_config(
                {first: iso.client.api.create_endpoint_config(
                    aliases=item.networks[first] or None)}))
        for network in rest:
            iso.client.api.connect_container_to_network(created["Id"], network,
                                                        aliases=item.networks[network] or None)
        iso.client.api.start(created["Id"])
        info = iso.client.api.inspect_container(created["Id"])["NetworkSettings"]["Networks"]
        item.addresses = {net: info[net]["IPAddress"] for net in item.networks}
    # every listener is up before anything probes it
    for item in containers:
        container = iso.client.containers.get(item.name)
        deadline = time.monotonic() + 30
        while set(item.ports) - set(listening_ports(container.attrs["State"]["Pid"])):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{item.name}: listeners not up on {item.ports}")
            time.sleep(0.2)
            container.reload()


@contextlib.contextmanager
def outside(iso: IsolatingEngine) -> Iterator[None]:
    """A network namespace beyond the engine's (the LAN/internet of a real host): a veth pair,
    OUTSIDE_GATEWAY on the engine's side, a listener on OUTSIDE_IP:OUTSIDE_PORT in it."""
    listener = subprocess.Popen(
        ["unshare", "--net", "python3", "-c", LISTEN, str(OUTSIDE_PORT)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        # its namespace exists once unshare has made it (before that, the pid is in ours)
        deadline = time.monotonic() + 30
        while os.readlink(f"/proc/{listener.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            if listener.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the outside namespace's listener did not start")
            time.sleep(0.05)
        peer = f"jhcout{listener.pid}"[:15]
        iso.in_netns("ip", "link", "add", "jhcout0", "type", "veth", "peer", "name", peer,
                     "netns", str(listener.pid))
        iso.in_netns("ip", "addr", "add", f"{OUTSIDE_GATEWAY}/24", "dev", "jhcout0")
        iso.in_netns("ip", "link", "set", "jhcout0", "up")
        there = ["nsenter", "-t", str(listener.pid), "-n"]
        for command in (["ip", "link", "set", "lo", "up"],
                        ["ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", peer],
                        ["ip", "link", "set", peer, "up"]):
            subprocess.run(there + command, check=True, capture_output=True, timeout=30)
        # and it listens (python may still be starting: a probe then met a refusal, once)
        while OUTSIDE_PORT not in listening_ports(listener.pid):
            if listener.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the outside namespace's listener did not start")
            time.sleep(0.05)
        yield
    finally:
        listener.kill()
        listener.wait(10)


def probe(iso: IsolatingEngine, container: str, targets: list[tuple[str, int]]
          ) -> dict[str, str]:
    """Connects from inside `container` (on the isolating engine) to each target."""
    result = iso.client.containers.get(container).exec_run(
        ["python3", "-c", PROBE, json.dumps(targets)])
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return json.loads(result.output.decode().strip().splitlines()[-1])


def connected(seen: dict[str, str]) -> list[str]:
    """The probed targets that answered."""
    return sorted(target for target, result in seen.items() if result == "connected")
