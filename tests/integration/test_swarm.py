"""Swarm mode for real: the project's hub with SwarmSpawner on a manager and two workers (issue 11).

Every node is a nested Docker engine (swarm_nodes.py); on the manager run the project's own
images as the platform deploys them in Swarm mode: the registry (services/registry) with the
notebook image pushed to it, Postgres and slapd (services/postgres, services/ldap, reconciled by
scripts/ldap-reconcile.sh) on an internal backend bridge, configurable-http-proxy, and the hub
(services/hub: jhc_*.py and jupyterhub_config.py) on the backend, a frontend bridge and the
attachable overlay. The hub's settings document is components.platform.hub.hub_environment's
Swarm mode with the registry digest menu, unchanged. User servers are SwarmSpawner services.

Storage is the same host directory at DATA_DIR on every node (this kernel cannot mount NFS);
the NFS transport of production is not exercised here (docs/testing.md).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import stack
import swarm_nodes as sn

REPO = sn.REPO
sys.path.insert(0, str(REPO))

from components.platform.hub import hub_environment  # noqa: E402
from components.platform.ldap import desired_document  # noqa: E402
from components.platform.proxy import proxy_command  # noqa: E402
from services.hub.jhc_settings import SETTINGS_FILE, settings_document  # noqa: E402

BUILD_LOG = Path(os.environ.get("JHC_TEST_BUILD_LOG", "/tmp/jhc-test-images.log"))
OVERLAY = f"{sn.PREFIX}-overlay"
BACKEND = f"{sn.PREFIX}-backend"
FRONTEND = f"{sn.PREFIX}-frontend"
PROXY_PORT = 8000
BASE_URL = f"http://{sn.MANAGER_IP}:{PROXY_PORT}"
CONFIG: dict[str, Any] = {
    "groups": [{"name": "physics"}],
    "users": [{"name": "ada", "groups": ["physics"], "admin": True},
              {"name": "ben", "groups": ["physics"]}],
    "images": [{"name": "minimal", "displayName": "Minimal Python", "path": "minimal"}],
    "datasets": [{"name": "census"}],
    "memLimit": "512M", "cpuLimit": "0.5", "cullIdleTimeout": 3600,
}
FILE = "swarm-proof.txt"


@dataclass
class Deployed:
    cluster: sn.Cluster
    passwords: dict[str, str]
    base_dn: str
    clients: dict[str, stack.TokenClient]
    containers: dict[str, Any]  # name -> container on the manager's engine

    def client(self, name: str) -> stack.TokenClient:
        if name not in self.clients:
            browser = stack.Browser(BASE_URL)
            response = browser.login(name, self.passwords[name])
            assert response.status_code == 302, response.text[-500:]
            self.clients[name] = stack.TokenClient(BASE_URL, browser.new_token(name))
        return self.clients[name]

    def uid_in_ldap(self, name: str) -> int:
        out = self.containers["ldap"].exec_run(
            ["ldapsearch", "-x", "-LLL", "-H", "ldap://127.0.0.1", "-D",
             f"cn=admin,{self.base_dn}", "-y", "/run/secrets/ldap-admin-password",
             "-b", f"uid={name},ou=people,{self.base_dn}", "uidNumber"])
        assert out.exit_code == 0, out.output
        [line] = [x for x in out.output.decode().splitlines() if x.startswith("uidNumber:")]
        return int(line.split()[1])

    def task_node(self, name: str) -> str:
        """The node the swarm's task list shows the user's running task on."""
        out = self.cluster.manager.sh(
            f"docker service ps jupyter-{name} --filter desired-state=running "
            "--format '{{.Node}} {{.CurrentState}}'")
        running = [line.split()[0] for line in out.splitlines() if "Running" in line]
        assert len(running) == 1, out
        return running[0]

    def user_container(self, name: str) -> Any:
        node = self.cluster.node(self.task_node(name))
        [container] = node.client.containers.list(
            filters={"label": f"com.docker.swarm.service.name=jupyter-{name}"})
        return container


def _put(container: Any, files: dict[str, tuple[str, int, int]]) -> None:
    """Uploads {path: (content, mode, uid)} before start, as the provider's `uploads` do."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for path, (content, mode, uid) in files.items():
            raw = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(raw), mode, uid, uid
            tar.addfile(info, io.BytesIO(raw))
    container.put_archive("/", data.getvalue())


def _secret(name: str, value: str, uid: int = 0) -> dict[str, tuple[str, int, int]]:
    return {f"/run/secrets/{name}": (value, 0o600, uid)}


def _prepare_data(data: Path) -> None:
    """What the host bootstrap leaves in the data directory (stack.prepare_data_dir's shape)."""
    (data / "homes").mkdir()
    (data / "shared").mkdir()
    census = data / "datasets" / "census"
    census.mkdir(parents=True)
    (census / "README.txt").write_text("read-only dataset\n")
    census.chmod(0o777)  # only the read-only mount may stop users from writing


def deploy(cluster: sn.Cluster, config: dict[str, Any] = CONFIG) -> Deployed:
    """The platform in Swarm mode on the cluster's manager (bench/swarm_spawns.py uses it too)."""
    manager, images, inner = cluster.manager, cluster.images, cluster.manager.client
    _prepare_data(cluster.data_dir)
    settings = stack.stack_settings(Path(sn.DATA_DIR), config)
    service = settings.service
    base_dn = service.ldap_base_dn
    containers: dict[str, Any] = {}

    # the registry on the manager's private address only, and the notebook image pushed to it
    containers["registry"] = inner.containers.run(
        images.registry, name=f"{sn.PREFIX}-registry", detach=True,
        ports={"5000/tcp": (sn.MANAGER_IP, sn.REGISTRY_PORT)},
        volumes={f"{sn.DATA_DIR}/registry": {"bind": "/var/lib/docker-registry", "mode": "rw"}})
    registry = f"{sn.MANAGER_IP}:{sn.REGISTRY_PORT}"
    sn.wait_for(lambda: _answers(manager, registry), 60, "the registry")
    repository = f"{registry}/{sn.PREFIX}-notebook"
    manager.sh(f"docker tag {images.notebook} {repository}:test && "
               f"docker push -q {repository}:test >/dev/null", timeout=300)
    [digest_ref] = [d for d in sn.digest_of(manager, f"{repository}:test")
                    if d.startswith(repository + "@")]

    # Not `--opt encrypted` as in production (components/platform/swarm.py): this machine's
    # kernel has no ESP, and the engine's IPsec SAs fail ("Failed Adding ... rfc4106(gcm(aes))
    # ...: function not implemented"), so an encrypted overlay carries nothing between nodes.
    manager.sh(f"docker network create -d overlay --attachable {OVERLAY} "
               f">/dev/null && docker network create --internal {BACKEND} >/dev/null && "
               f"docker network create {FRONTEND} >/dev/null")
    pg_password, proxy_token = secrets.token_hex(16), secrets.token_hex(32)
    admin_password, readonly_password = secrets.token_hex(16), secrets.token_hex(16)
    passwords = {u.name: secrets.token_urlsafe(12) for u in service.users}

    def create(role: str, image: str, aliases_on: list[str], alias: str,
               files: dict[str, tuple[str, int, int]], **kwargs: Any) -> Any:
        first, *more = aliases_on
        container = inner.containers.create(
            image, name=f"{sn.PREFIX}-{role}", detach=True, network=first,
            networking_config={first: inner.api.create_endpoint_config(aliases=[alias])},
            **kwargs)
        for network in more:
            inner.networks.get(network).connect(container, aliases=[alias])
        _put(container, files)
        container.start()
        containers[role] = container
        return container

    create("postgres", images.postgres, [BACKEND], "postgres",
           _secret("postgres-password", pg_password, uid=999),
           environment=["POSTGRES_USER=jupyterhub", "POSTGRES_DB=jupyterhub",
                        "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password",
                        "POSTGRES_HOST_AUTH_METHOD=scram-sha-256"],
           volumes={f"{sn.DATA_DIR}/state/postgres": {"bind": "/var/lib/postgresql/data",
                                                     "mode": "rw"}})
    create("ldap", images.ldap, [BACKEND], "ldap",
           {**_secret("ldap-admin-password", admin_password),
            **_secret("ldap-readonly-password", readonly_password)},
           environment=[f"LDAP_BASE_DN={base_dn}",
                        f"LDAP_ORGANISATION={service.ldap_organisation}",
                        "LDAP_ADMIN_PASSWORD_FILE=/run/secrets/ldap-admin-password",
                        "LDAP_READONLY_PASSWORD_FILE=/run/secrets/ldap-readonly-password"],
           volumes={f"{sn.DATA_DIR}/state/ldap/config": {"bind": "/etc/ldap/slapd.d",
                                                        "mode": "rw"},
                    f"{sn.DATA_DIR}/state/ldap/data": {"bind": "/var/lib/ldap", "mode": "rw"}})
    reconcile = subprocess.run(
        ["bash", str(REPO / "scripts" / "ldap-reconcile.sh")],
        input=desired_document(service, passwords), text=True, capture_output=True,
        env={**os.environ, "JHC_DOCKER_HOST": f"unix://{manager.socket_dir}/docker.sock",
             "JHC_SSH_OPTS": "", "JHC_LDAP_CONTAINER": f"{sn.PREFIX}-ldap"}, timeout=180)
    assert reconcile.returncode == 0, reconcile.stderr
    sn.wait_for(lambda: containers["postgres"].exec_run(
        ["pg_isready", "-U", "jupyterhub", "-h", "127.0.0.1"]).exit_code == 0, 120, "Postgres")

    create("proxy", images.proxy, [FRONTEND, OVERLAY], "proxy", {},
           command=proxy_command(), environment=[f"CONFIGPROXY_AUTH_TOKEN={proxy_token}"],
           ports={f"{PROXY_PORT}/tcp": (sn.MANAGER_IP, PROXY_PORT)})
    menu = [{"name": i.name, "display_name": i.display_name, "image": digest_ref,
             "groups": list(i.groups)} for i in service.images]
    # the document the program uploads in Swarm mode, unchanged
    document = hub_environment(service, sn.DATA_DIR, OVERLAY, BASE_URL, menu, swarm=True)
    create("hub", images.hub, [BACKEND, FRONTEND, OVERLAY], "jupyterhub",
           {SETTINGS_FILE: (settings_document(document), 0o644, 0),
            **_secret("cookie-secret", secrets.token_hex(32)),
            **_secret("crypt-key", secrets.token_hex(32)),
            **_secret("proxy-token", proxy_token), **_secret("db-password", pg_password),
            **_secret("ldap-readonly-password", readonly_password)},
           volumes={"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                    f"{sn.DATA_DIR}/homes": {"bind": "/homes", "mode": "rw"},
                    f"{sn.DATA_DIR}/shared": {"bind": "/shared", "mode": "rw"}})
    sn.wait_for(lambda: _hub_healthy(), 180, "the hub through the proxy")
    return Deployed(cluster, passwords, base_dn, {}, containers)


def _answers(node: sn.Node, registry: str) -> bool:
    return node.sh(f"python3 -c \"import urllib.request; print(urllib.request.urlopen("
                   f"'http://{registry}/v2/', timeout=2).status)\"", check=False).strip() == "200"


def _hub_healthy() -> bool:
    import requests

    return requests.get(f"{BASE_URL}/hub/health", timeout=5).status_code == 200


@pytest.fixture(scope="module")
def swarm(docker_engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("swarm")
    started = time.monotonic()
    cluster = sn.up(docker_engine, root, BUILD_LOG)
    try:
        deployed = deploy(cluster)
        print(f"swarm: 3 nodes and the platform up in {time.monotonic() - started:.0f}s")
        yield deployed
    finally:
        log = Path(os.environ.get("JHC_SWARM_LOG", "/tmp/jhcswr-hub.log"))
        log.write_text(cluster.manager.sh(f"docker logs {sn.PREFIX}-hub 2>&1; "
                                          "docker service ls; docker node ls", check=False))
        print(f"swarm: the hub's log is in {log}")
        if os.environ.get("JHC_SWARM_KEEP") != "1":  # keep the nodes to debug a failure
            sn.down(docker_engine)


def _probe(container: Any, host: str, port: int) -> bool:
    """True if a TCP connection from inside ``container`` to host:port succeeds within 3 s."""
    code = ("import socket,sys\ns=socket.socket();s.settimeout(3)\n"
            f"sys.exit(0 if s.connect_ex(({host!r},{port}))==0 else 1)")
    return container.exec_run(["python3", "-c", code]).exit_code == 0


def _addresses(container: Any) -> list[str]:
    container.reload()
    return [n["IPAddress"] for n in container.attrs["NetworkSettings"]["Networks"].values()
            if n.get("IPAddress")]


def _write(client: stack.TokenClient, name: str, text: str) -> None:
    response = client.server("PUT", name, f"api/contents/{FILE}",
                             json={"type": "file", "format": "text", "content": text})
    assert response.status_code in (200, 201), response.text


def _read(client: stack.TokenClient, name: str) -> str:
    response = client.server("GET", name, f"api/contents/{FILE}")
    assert response.status_code == 200, response.text
    return response.json()["content"]


def _start(client: stack.TokenClient, name: str) -> None:
    response = client.start_server(name, timeout=240)
    assert response.status_code in (201, 202), response.text


def test_server_on_a_worker_and_the_home_follows_to_the_other_worker(swarm: Deployed) -> None:
    workers = set(swarm.cluster.workers)
    ada = swarm.client("ada")
    _start(ada, "ada")
    first = swarm.task_node("ada")
    assert first in workers  # never the manager: placement on workers
    text = f"written on {first} at {time.time()}"
    _write(ada, "ada", text)
    ada.stop_server("ada")
    # force the next start onto the other worker, as a drained (or lost) node would
    swarm.cluster.manager.sh(f"docker node update --availability drain {first} >/dev/null")
    try:
        _start(ada, "ada")
        second = swarm.task_node("ada")
        assert second in workers - {first}
        assert _read(ada, "ada") == text
        stat = os.stat(swarm.cluster.data_dir / "homes" / "ada" / FILE)
        assert stat.st_uid == swarm.uid_in_ldap("ada")
    finally:
        swarm.cluster.manager.sh(f"docker node update --availability active {first} >/dev/null")
        ada.stop_server("ada")


def test_user_server_is_hardened_and_cannot_reach_postgres_ldap_or_metadata(
        swarm: Deployed) -> None:
    ben = swarm.client("ben")
    _start(ben, "ben")
    try:
        container = swarm.user_container("ben")
        host = container.attrs["HostConfig"]
        # what the worker's engine applied (SwarmSpawner's service spec + JhcSwarmSpawner)
        assert host["Privileged"] is False
        assert "ALL" in (host["CapDrop"] or [])
        assert sorted(c.removeprefix("CAP_") for c in host["CapAdd"]) == \
            ["CHOWN", "SETGID", "SETUID"]
        assert host["Memory"] == 512 * 2**20 and host["NanoCpus"] == 500_000_000
        assert host["PidsLimit"] == 1024
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert not [m for m in mounts.values() if "docker.sock" in m["Source"]]
        assert mounts["/home/ben/datasets/census"]["RW"] is False
        # a reservation on the service, half the memory limit
        spec = json.loads(swarm.cluster.manager.sh(
            "docker service inspect --format '{{json .Spec.TaskTemplate.Resources}}' jupyter-ben"))
        assert spec["Reservations"]["MemoryBytes"] == 256 * 2**20
        # positive controls: the hub reaches both, and the metadata stand-in answers a node
        hub = swarm.containers["hub"]
        assert _probe(hub, "postgres", 5432) and _probe(hub, "ldap", 389)
        node = swarm.cluster.node(swarm.task_node("ben"))
        assert node.sh(f"python3 -c \"import urllib.request; print(urllib.request.urlopen("
                       f"'http://{sn.METADATA_IP}/', timeout=3).status)\"").strip() == "200"
        # from the user's server on the worker: nothing
        for role, port in (("postgres", 5432), ("ldap", 389)):
            for address in _addresses(swarm.containers[role]):
                assert not _probe(container, address, port), f"{role} at {address}"
            assert not _probe(container, role, port), role
        assert not _probe(container, sn.METADATA_IP, 80)
    finally:
        ben.stop_server("ben")


def test_worker_lost_mid_session_user_starts_again_on_the_other(swarm: Deployed) -> None:
    ada = swarm.client("ada")
    _start(ada, "ada")
    lost = swarm.task_node("ada")
    text = f"before {lost} was lost"
    _write(ada, "ada", text)
    swarm.cluster.workers[lost].container.kill()  # the VM is gone
    manager = swarm.cluster.manager
    sn.wait_for(lambda: "Down" in manager.sh(
        f"docker node ls --filter name={lost} --format '{{{{.Status}}}}'"), 90,
        f"{lost} to be seen down")
    ada.stop_server("ada")  # the user (or the culler) stops the dead server
    _start(ada, "ada")
    assert swarm.task_node("ada") in set(swarm.cluster.workers) - {lost}
    assert _read(ada, "ada") == text
    # the hub, Postgres and LDAP are unaffected: a new login, through LDAP into the hub's DB
    assert _hub_healthy()
    swarm.clients.pop("ben", None)
    ben = swarm.client("ben")
    assert ben.user("ben")["name"] == "ben"
    ada.stop_server("ada")
