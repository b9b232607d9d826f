"""User servers spawned by the real hub on the real engine: identity, hardening, storage, images,
network isolation.

Why: these are the promises of docs/hub.md "User containers" — only checkable on a running
container started by DockerSpawner with the project's pre-spawn hook and the env the stack sets.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import docker
import pytest
import stack

CONTAINER = "jupyter-{}"  # DockerSpawner's default name_template: {prefix}-{username}
#: What may be in a user container's environment: the hub's own per-server variables, the
#: docker-stacks start contract, and the image's ENV. Anything else is a leak.
ALLOWED_ENV = ("JUPYTERHUB_", "JPY_", "NB_USER=", "NB_UID=", "NB_GID=", "CHOWN_HOME=", "PATH=",
               "SHELL=", "HOME=", "USER=", "LOGNAME=", "HOSTNAME=", "PWD=", "OLDPWD=", "SHLVL=", "_=",
               "JUPYTER_IMAGE", "LANG=", "TERM=", "SUDO_",
               "MEM_LIMIT=", "CPU_LIMIT=")  # set by JupyterHub's Spawner.get_env

PROBE = r"""
import json, os, sys
me = str(os.getpid())
out = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    if pid == me:
        continue
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        continue
    if not any(a.endswith(b"jupyterhub-singleuser") for a in argv[:2]):
        continue
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
    out["status"] = {k: v.split() for k, v in status.items()
                     if k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapInh", "CapAmb",
                              "NoNewPrivs")}
    try:
        out["environ"] = open(f"/proc/{pid}/environ", "rb").read().decode().split("\0")
    except OSError as err:
        out["environ_error"] = str(err)
out["docker_sock"] = os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock")
print(json.dumps(out))
"""

CONNECT = r"""
import socket, sys
host = sys.argv[1]
for port in sys.argv[2:]:
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        print(port, "open")
    except OSError as err:
        print(port, "closed", type(err).__name__)
"""


def container(client: docker.DockerClient, username: str) -> Any:
    return client.containers.get(CONTAINER.format(username))


def exec_json(box: Any, script: str, user: str) -> dict[str, Any]:
    code, output = box.exec_run(["/opt/venv/bin/python3", "-c", script], user=user)
    assert code == 0, output.decode(errors="replace")
    return json.loads(output.decode().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ben(platform: stack.Platform, user_client) -> stack.TokenClient:
    """ben (physics) with a running server of the physics-only image "scipy"."""
    client = user_client("ben")
    response = client.start_server("ben", {"image": "scipy"})
    assert response.status_code in (201, 202), response.text
    return client


def test_server_runs_as_the_ldap_uid_without_privileges(
    platform: stack.Platform, ben: stack.TokenClient, docker_engine: docker.DockerClient
) -> None:
    uid = platform.uid_of("ben")
    box = container(docker_engine, "ben")
    host_config = box.attrs["HostConfig"]
    # the configured limits (memLimit 512M, cpuLimit 0.5) and the pids default
    assert host_config["Memory"] == 512 * 1024**2
    cpus = host_config.get("NanoCpus") or (
        host_config["CpuQuota"] / host_config["CpuPeriod"] * 1e9 if host_config["CpuPeriod"] else 0)
    assert cpus == 0.5e9, host_config
    assert host_config["PidsLimit"] == 1024
    assert host_config["Privileged"] is False
    assert host_config["CapDrop"] == ["ALL"]
    assert {c.removeprefix("CAP_") for c in host_config["CapAdd"]} == {"CHOWN", "SETUID", "SETGID"}
    assert "no-new-privileges:true" in host_config["SecurityOpt"]
    binds = json.dumps([host_config.get("Binds"), box.attrs.get("Mounts")])
    assert "docker.sock" not in binds
    assert box.attrs["Config"]["Image"] == platform.image

    probe = exec_json(box, PROBE, f"{uid}:100")
    status = probe["status"]
    assert status["Uid"] == [str(uid)] * 4, status
    assert status["Gid"] == ["100"] * 4, status
    for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(status[caps][0], 16) == 0, status
    assert status["NoNewPrivs"] == ["1"]
    assert probe["docker_sock"] is False


def test_no_credential_in_the_container_environment(
    platform: stack.Platform, ben: stack.TokenClient, docker_engine: docker.DockerClient
) -> None:
    box = container(docker_engine, "ben")
    probe = exec_json(box, PROBE, f"{platform.uid_of('ben')}:100")
    assert "environ" in probe, probe
    for env in (box.attrs["Config"]["Env"], [e for e in probe["environ"] if e]):
        assert any(e.startswith("JUPYTERHUB_API_TOKEN=") for e in env)
        leaks = [e for e in env if not e.startswith(ALLOWED_ENV)]
        assert not leaks, leaks
        assert not [e for e in env if e.startswith(("JHC_", "CONFIGPROXY", "PG", "LDAP"))]
        text = "\n".join(env)
        for value in platform.secret_values:
            assert value not in text


def _put_text(client: stack.TokenClient, user: str, path: str, text: str) -> Any:
    return client.server("PUT", user, f"api/contents/{path}",
                         json={"type": "file", "format": "text", "content": text})


def test_home_survives_stop_and_start_and_is_owned_by_the_user(
    platform: stack.Platform, ben: stack.TokenClient, docker_engine: docker.DockerClient
) -> None:
    uid = platform.uid_of("ben")
    response = _put_text(ben, "ben", "notes.txt", "kept across restarts")
    assert response.status_code in (200, 201), response.text
    on_host = platform.data_dir / "homes" / "ben" / "notes.txt"
    assert (on_host.stat().st_uid, on_host.stat().st_gid) == (uid, 100)
    home = on_host.parent.stat()
    assert (home.st_uid, home.st_mode & 0o777) == (uid, 0o700)
    first = container(docker_engine, "ben").id

    ben.stop_server("ben")
    with pytest.raises(docker.errors.NotFound):
        stack.wait_until(lambda: not container(docker_engine, "ben"), 30, "container removal")
    assert on_host.read_text() == "kept across restarts"

    assert ben.start_server("ben", {"image": "scipy"}).status_code in (201, 202)
    assert container(docker_engine, "ben").id != first
    again = ben.server("GET", "ben", "api/contents/notes.txt")
    assert again.status_code == 200 and again.json()["content"] == "kept across restarts"


def test_shared_dir_is_writable_by_group_100_members(
    platform: stack.Platform, ben: stack.TokenClient, user_client
) -> None:
    ada = user_client("ada")
    assert ada.start_server("ada", {"image": "minimal"}).status_code in (201, 202)
    for name, client in (("ada", ada), ("ben", ben)):
        response = _put_text(client, name, f"shared/from-{name}.txt", f"hello from {name}")
        assert response.status_code in (200, 201), (name, response.text)
    shared = platform.data_dir / "shared"
    st = shared.stat()
    # the hub made the root-owned dir (as Docker creates it on the local stack) 2775 root:100
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 100, 0o2775)
    for name in ("ada", "ben"):
        written = (shared / f"from-{name}.txt").stat()
        assert (written.st_uid, written.st_gid) == (platform.uid_of(name), 100)
    # each sees the other's file
    seen = ben.server("GET", "ben", "api/contents/shared/from-ada.txt")
    assert seen.status_code == 200 and seen.json()["content"] == "hello from ada"


def test_dataset_is_mounted_read_only(platform: stack.Platform, ben: stack.TokenClient) -> None:
    dataset = Path(platform.settings.service.datasets[0].path)
    readable = ben.server("GET", "ben", "api/contents/datasets/census/README.txt")
    assert readable.status_code == 200, readable.text
    refused = _put_text(ben, "ben", "datasets/census/mine.txt", "x")
    assert refused.status_code >= 400, refused.text
    assert sorted(p.name for p in dataset.iterdir()) == ["README.txt"]
    # the directory itself is mode 777: only the read-only mount stopped the write
    assert dataset.stat().st_mode & 0o777 == 0o777


@pytest.mark.parametrize("image", ["scipy", "jhc-test/base:bookworm", "*", "minimal:x"])
def test_image_outside_the_users_menu_is_refused(
    platform: stack.Platform, user_client, docker_engine: docker.DockerClient, image: str
) -> None:
    # eli (students) may log in and start "minimal", but "scipy" is for physics only, and an
    # image that is not in the menu at all is never started, whoever asks
    eli = user_client("eli")
    response = eli.api("POST", "/users/eli/server", json={"image": image})
    assert 400 <= response.status_code < 500, response.text
    time.sleep(0.5)
    assert not eli.user("eli").get("servers")
    with pytest.raises(docker.errors.NotFound):
        container(docker_engine, "eli")


def test_user_container_cannot_reach_postgres_or_ldap(
    platform: stack.Platform, ben: stack.TokenClient, docker_engine: docker.DockerClient
) -> None:
    box = container(docker_engine, "ben")
    gateway = platform.network.gateway
    ports = {"hub": platform.hub.port, "postgres": platform.postgres.port,
             "ldap": platform.ldap.port, "proxy-api": platform.proxy.api_port}
    code, output = box.exec_run(
        ["/opt/venv/bin/python3", "-c", CONNECT, gateway, *map(str, ports.values())],
        user=f"{platform.uid_of('ben')}:100")
    assert code == 0, output
    result = dict(line.split()[:2] for line in output.decode().splitlines())
    # the control: the hub, which containers must reach, is reachable the same way
    assert result[str(ports["hub"])] == "open", result
    for name in ("postgres", "ldap", "proxy-api"):
        assert result[str(ports[name])] == "closed", (name, result)
