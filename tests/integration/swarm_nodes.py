"""A three-node Docker Swarm for tests/integration/test_swarm.py: every node a nested dockerd.

Why nested: the shared engine of the test machine must never become a swarm manager (other test
sessions use it), so the manager and both workers are containers running their own Docker
engine (Debian's docker.io, tests/integration/images/swarm-node) on a bridge of their own. The
node containers are not --privileged (runc refuses that here: the machine's capability bounding
set lacks CAP_SYS_RESOURCE); they get every other capability, unconfined seccomp/AppArmor/system
paths, all devices and a private cgroup namespace, which is what dockerd needs.

Storage: the production workers mount the manager's data directory over NFSv4 at the same path.
This kernel has no NFS client (no nfs in /proc/filesystems), so every node here gets the same
host directory bind-mounted at DATA_DIR instead: the bind mounts of homes, shared and datasets
are then identical on every node, as with NFS; the NFS transport itself is not exercised.

Images: built on the outer engine (cached there by Docker's layer cache and the recipe labels
of docker_helpers/standins) and loaded into the manager once: the manager's /var/lib/docker is
a cache volume kept between runs (CACHE_VOLUME), loaded only with images it lacks. Workers start
empty and pull the notebook image from the registry on the manager, by digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from docker_helpers import (  # noqa: E402
    RECIPE_LABEL,
    _write_build_log,
    base_recipe,
    context_recipe,
    ensure_base_image,
    ensure_notebook_image,
)

PREFIX = "jhcswr"
NODE_CONTEXT = HERE / "images" / "swarm-node"
NODE_TAG = f"{PREFIX}/node:test"
NETWORK = f"{PREFIX}-net"
SUBNET = "192.168.213.0/24"
GATEWAY = "192.168.213.1"
MANAGER_IP = "192.168.213.2"
WORKER_IPS = {f"{PREFIX}-worker1": "192.168.213.3", f"{PREFIX}-worker2": "192.168.213.4"}
#: A stand-in for the cloud metadata service, off every node like the real one (forwarded
#: traffic from containers, where DOCKER-USER applies).
METADATA = f"{PREFIX}-metadata"
METADATA_NODE_IP = "192.168.213.9"
METADATA_IP = "169.254.169.254"
DATA_DIR = "/srv/jupyterhub"  # DATA_DIR of the production hosts: the NFS mount point on workers
CACHE_VOLUME = f"{PREFIX}-cache-manager"  # kept between runs: the manager's loaded images
REGISTRY_PORT = 5000
# Every capability of this kernel's bounding set except SYS_RESOURCE (see the module docstring).
NODE_CAPS = (
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN", "DAC_OVERRIDE",
    "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
    "NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN",
    "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
    "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM")


class SwarmError(RuntimeError):
    pass


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # noqa: BLE001  (reported if it never succeeds)
            last = err
        time.sleep(interval)
    raise SwarmError(f"timed out after {timeout:.0f}s waiting for {what}"
                     + (f" (last error: {last})" if last else ""))


# ------------------------------------------------------------------------------------- images


def node_recipe() -> str:
    return context_recipe(NODE_CONTEXT, base_recipe())


def _build(client: docker.DockerClient, context: Path, tag: str, log: Path,
           buildargs: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> str:
    """docker build on the outer engine (its layer cache makes an unchanged rebuild instant)."""
    try:
        image, lines = client.images.build(path=str(context), tag=tag, buildargs=buildargs or {},
                                           labels=labels or {}, network_mode="host", rm=True,
                                           forcerm=True)
    except docker.errors.BuildError as error:
        _write_build_log(log, error.build_log)
        raise
    _write_build_log(log, lines)
    return image.id


@dataclass(frozen=True)
class Images:
    """Outer-engine image ids of everything the manager runs."""

    node: str
    hub: str
    ldap: str
    postgres: str
    proxy: str
    registry: str
    notebook: str

    def for_manager(self) -> dict[str, str]:
        return {"hub": self.hub, "ldap": self.ldap, "postgres": self.postgres,
                "proxy": self.proxy, "registry": self.registry, "notebook": self.notebook}


def build_images(client: docker.DockerClient, log: Path) -> Images:
    """The node image, and the project's own images built as the program builds them (their
    upstream bases replaced by the e2e stand-ins, tests/e2e/standins)."""
    from standins import ensure_upstream

    sys.path.insert(0, str(REPO))
    from components.platform.versions import POSTGRES_IMAGE, PROXY_IMAGE

    ensure_base_image(client, log)
    notebook = client.images.get(ensure_notebook_image(client, log)).id
    if (client.images.get(NODE_TAG).labels or {}).get(RECIPE_LABEL) != node_recipe() \
            if _exists(client, NODE_TAG) else True:
        _build(client, NODE_CONTEXT, NODE_TAG, log, {"BASE_IMAGE": "jhc-test/base:bookworm"},
               {RECIPE_LABEL: node_recipe()})
    for upstream in ("quay.io/jupyterhub/jupyterhub:6.1.1", PROXY_IMAGE, POSTGRES_IMAGE,
                     "debian:12.11-slim"):
        ensure_upstream(client, upstream, log)
    services = REPO / "services"
    return Images(
        node=client.images.get(NODE_TAG).id,
        hub=_build(client, services / "hub", f"{PREFIX}/hub:test", log),
        ldap=_build(client, services / "ldap", f"{PREFIX}/ldap:test", log),
        postgres=_build(client, services / "postgres", f"{PREFIX}/postgres:test", log,
                        {"POSTGRES_IMAGE": POSTGRES_IMAGE}),
        proxy=client.images.get(PROXY_IMAGE).id,
        registry=_build(client, services / "registry", f"{PREFIX}/registry:test", log),
        notebook=notebook)


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


# -------------------------------------------------------------------------------------- nodes


@dataclass
class Node:
    name: str
    ip: str
    container: Any  # the outer container
    socket_dir: Path

    @property
    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=f"unix://{self.socket_dir}/docker.sock", timeout=300)

    def sh(self, script: str, check: bool = True, timeout: float = 120) -> str:
        """Run a shell script in the node's own namespace (its docker CLI talks to its engine)."""
        result = subprocess.run(["docker", "exec", self.container.id, "bash", "-c", script],
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise SwarmError(f"{self.name}: {script!r} failed ({result.returncode}): "
                             f"{result.stderr.strip()[-2000:]}")
        return result.stdout


@dataclass
class Cluster:
    outer: docker.DockerClient
    manager: Node
    workers: dict[str, Node]
    data_dir: Path            # the host directory every node sees at DATA_DIR
    images: Images
    metadata: Any = None      # the metadata stand-in container
    network: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def nodes(self) -> list[Node]:
        return [self.manager, *self.workers.values()]

    def node(self, name: str) -> Node:
        return self.manager if name == self.manager.name else self.workers[name]


def _fixed_address(ip: str) -> dict[str, Any]:
    return {"network": NETWORK, "networking_config": {
        NETWORK: docker.types.EndpointConfig("1.41", ipv4_address=ip)}}


def _start_node(outer: docker.DockerClient, name: str, ip: str, data_dir: Path,
                volume: str, root: Path) -> Node:
    socket_dir = root / f"{name}-sock"
    socket_dir.mkdir(parents=True, exist_ok=True)
    # the docker CLI, because docker-py cannot send systempaths=unconfined (MaskedPaths and
    # ReadonlyPaths emptied: the nested engine writes /proc/sys)
    args = ["docker", "create", "--name", name, "--hostname", name,
            "--label", f"org.jupyterhub-cloud.integration={PREFIX}",
            "--network", NETWORK, "--ip", ip, "--cgroupns", "private",
            "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
            "--security-opt", "systempaths=unconfined", "--device-cgroup-rule", "a *:* rwm",
            "-v", f"{volume}:/var/lib/docker", "-v", f"{data_dir}:{DATA_DIR}",
            "-v", f"{socket_dir}:/run/outer"]
    for cap in NODE_CAPS:
        args += ["--cap-add", cap]
    args += [NODE_TAG, "-H", "unix:///var/run/docker.sock", "-H", "unix:///run/outer/docker.sock",
             # the manager's registry is plain HTTP, as in production (worker daemon.json)
             "--insecure-registry", f"{MANAGER_IP}:{REGISTRY_PORT}"]
    ident = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()
    container = outer.containers.get(ident)
    container.start()
    node = Node(name, ip, container, socket_dir)
    wait_for(lambda: node.client.ping(), 60, f"the engine of {name}")
    return node


def _load_missing(outer: docker.DockerClient, node: Node, images: dict[str, str]) -> None:
    """docker save | docker load of the images the node's engine lacks (by id)."""
    inner = node.client
    missing = [ident for ident in images.values() if not _exists(inner, ident)]
    if not missing:
        return
    save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
    try:
        subprocess.run(["docker", "exec", "-i", node.container.id, "docker", "load", "-q"],
                       stdin=save.stdout, check=True, capture_output=True, timeout=900)
    finally:
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0:
            raise SwarmError("docker save failed")


def rendered_metadata_block() -> str:
    """The metadata-blocking script exactly as the host bootstrap renders it for the dev stack."""
    import yaml

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "tests"))
    from components.config import load_settings
    from components.host import user_data
    from harness import stack_config

    config = {k.split(":", 1)[1]: v for k, v in stack_config(REPO / "Pulumi.dev.yaml").items()}
    settings = load_settings(config, "dev")
    document = yaml.safe_load(user_data(settings.host, ("/dev/vdb",)))
    [entry] = [f for f in document["write_files"] if f["path"] == "/usr/local/sbin/jhc-metadata-block"]
    assert entry.get("encoding") in (None, "text/plain"), entry.get("encoding")
    return entry["content"]


def _put_file(container: Any, path: str, content: bytes, mode: int = 0o755) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size, info.mode = len(content), mode
        tar.addfile(info, io.BytesIO(content))
    container.put_archive("/", data.getvalue())


def _start_metadata(outer: docker.DockerClient) -> Any:
    """An HTTP server at 169.254.169.254 on a container of the node network; every node routes
    that address to it, so from a node it is forwarded traffic, as on a cloud VM."""
    container = outer.containers.run(
        NODE_TAG, name=METADATA, detach=True, cap_add=["NET_ADMIN"], entrypoint=["bash", "-c"],
        command=[f"ip addr add {METADATA_IP}/32 dev lo && exec python3 -m http.server 80 "
                 f"--bind {METADATA_IP}"],
        labels={"org.jupyterhub-cloud.integration": PREFIX}, **_fixed_address(METADATA_NODE_IP))
    return container


def up(outer: docker.DockerClient, root: Path, log: Path) -> Cluster:
    """Builds (cached) and starts the three nodes, the swarm, the overlay and the registry."""
    down(outer)
    images = build_images(outer, log)
    outer.networks.create(NETWORK, driver="bridge", ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet=SUBNET, gateway=GATEWAY)]),
        labels={"org.jupyterhub-cloud.integration": PREFIX})
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    manager = _start_node(outer, f"{PREFIX}-manager", MANAGER_IP, data_dir, CACHE_VOLUME, root)
    workers = {name: _start_node(outer, name, ip, data_dir, f"{name}-lib", root)
               for name, ip in WORKER_IPS.items()}
    cluster = Cluster(outer, manager, workers, data_dir, images)
    # the manager's engine is reused between runs: start from a clean swarm and no containers
    manager.sh("docker swarm leave --force >/dev/null 2>&1 || true; "
               "ids=$(docker ps -aq); [ -z \"$ids\" ] || docker rm -f $ids >/dev/null; "
               "docker network prune -f >/dev/null; docker volume prune -f >/dev/null")
    # containers of an earlier run restarted with the engine and may have written here
    for item in data_dir.iterdir():
        subprocess.run(["rm", "-rf", str(item)], check=True)
    _load_missing(outer, manager, images.for_manager())
    manager.sh(f"docker swarm init --advertise-addr {MANAGER_IP} >/dev/null")
    token = manager.sh("docker swarm join-token -q worker").strip()
    for worker in workers.values():
        worker.sh(f"docker swarm join --token {token} {MANAGER_IP}:2377 >/dev/null")
    wait_for(lambda: sorted(manager.sh(
        "docker node ls --filter role=worker --format '{{.Hostname}} {{.Status}}'").split())
        == sorted([*(f"{n}" for n in workers), *["Ready"] * len(workers)]), 60,
        "both workers to be Ready")
    # the host bootstrap's metadata block, as rendered, on every node
    cluster.metadata = _start_metadata(outer)
    script = rendered_metadata_block().encode()
    for node in cluster.nodes:
        _put_file(node.container, "/usr/local/sbin/jhc-metadata-block", script)
        node.sh(f"ip route replace {METADATA_IP}/32 via {METADATA_NODE_IP}")
        if os.environ.get("JHC_SWR_NO_METADATA_BLOCK") != "1":  # mutation switch
            node.sh("/usr/local/sbin/jhc-metadata-block")
    return cluster


def down(outer: docker.DockerClient) -> None:
    """Removes every container, volume and network of this module except the image cache."""
    for container in outer.containers.list(
            all=True, filters={"label": f"org.jupyterhub-cloud.integration={PREFIX}"}):
        container.remove(force=True, v=False)
    for name in WORKER_IPS:
        with contextlib.suppress(docker.errors.NotFound):
            outer.volumes.get(f"{name}-lib").remove(force=True)
    for network in outer.networks.list(names=[NETWORK]):
        network.remove()


def digest_of(node: Node, ref: str) -> str:
    return json.loads(node.sh(f"docker image inspect --format '{{{{json .RepoDigests}}}}' {ref}"))


def content_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
