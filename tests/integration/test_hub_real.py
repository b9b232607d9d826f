"""The real-hub and real-engine tests moved here from tests/test_hub_config.py (unchanged
assertions): there they skipped without an engine or a global configurable-http-proxy, and a
skipped test must not exist in CI. Here the integration fixtures provide both.

Why they are kept next to the platform scenarios: they check the config file alone (sqlite, no
LDAP) with the smallest environment, so a failure here points at jupyterhub_config.py itself.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import stack
import test_hub_config as unit

HUB_DIR = unit.HUB_DIR
FakeUser, make_spawner, run, _secret = unit.FakeUser, unit.make_spawner, unit.run, unit._secret
# the unit tests' fixtures, reused as they are
base_env = unit.base_env
load = unit.load


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float, proc=None, headers=None) -> int:
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"process exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _get_json(url: str, token: str) -> Any:
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def chp():
    """configurable-http-proxy 5.3.0 from .cache/npm (scripts/install-system-deps.sh)."""
    import subprocess

    binary = str(stack.CHP)
    if not stack.CHP.exists():
        pytest.fail(f"{binary} missing: run scripts/install-system-deps.sh (make deps)")
    public, api, hub = _free_port(), _free_port(), _free_port()
    token = "chp-token-" + os.urandom(8).hex()
    proc = subprocess.Popen(
        [binary, "--ip=127.0.0.1", f"--port={public}", "--api-ip=127.0.0.1",
         f"--api-port={api}", f"--default-target=http://127.0.0.1:{hub}"],
        env={"PATH": f"{stack.NPM_BIN}:{os.environ['PATH']}", "CONFIGPROXY_AUTH_TOKEN": token},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{api}/api/routes", 30, proc,
                   {"Authorization": f"token {token}"})
        yield SimpleNamespace(public=public, api=api, hub=hub, token=token, proc=proc)
    finally:
        stack.stop_process(proc)


def test_real_hub_starts_behind_the_external_proxy_and_leaves_it_on_exit(chp, base_env, tmp_path):
    import signal
    import subprocess
    import time

    env = {
        **base_env,
        "JHC_PROXY_AUTH_TOKEN_FILE": _secret(tmp_path / "secrets" / "chp", chp.token),
        "JHC_PROXY_API_URL": f"http://127.0.0.1:{chp.api}",
        "JHC_HUB_PORT": str(chp.hub),
        "JHC_HUB_CONNECT_HOST": "127.0.0.1",
        "JHC_ADMIN_USERS": "alice",
        "JHC_CULL_TIMEOUT": "600",
    }
    workdir = tmp_path / "hub"
    workdir.mkdir()
    log = open(tmp_path / "hub.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(HUB_DIR / "jupyterhub_config.py")],
        cwd=workdir, env={"PATH": os.environ["PATH"],
                          **unit.hub_process_env(env, tmp_path / "jhc-settings.json")},
        stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        assert _wait_http(f"http://127.0.0.1:{chp.hub}/hub/health", 90, proc) == 200
        # the hub registers itself with the proxy (CHP's own default route has no "hub" flag)
        deadline = time.monotonic() + 30
        while not _get_json(f"http://127.0.0.1:{chp.api}/api/routes", chp.token).get(
            "/", {}
        ).get("hub"):
            assert time.monotonic() < deadline, "the hub never registered its route"
            time.sleep(0.2)
        # the container healthcheck the Pulumi component declares (wait=True waits for it)
        # passes against this hub, and fails where no hub answers
        from components.platform.hub import HEALTHCHECK, HUB_PORT

        assert HEALTHCHECK[:3] == ["CMD", "python3", "-c"]
        probe = HEALTHCHECK[3]
        here = probe.replace(f":{HUB_PORT}/", f":{chp.hub}/")
        assert here != probe
        assert subprocess.run([sys.executable, "-c", here], timeout=30).returncode == 0
        nobody = probe.replace(f":{HUB_PORT}/", f":{_free_port()}/")
        assert subprocess.run([sys.executable, "-c", nobody], capture_output=True,
                              timeout=30).returncode != 0
        # through the proxy
        assert _wait_http(f"http://127.0.0.1:{chp.public}/hub/login", 10) == 200
        # metrics are not public
        assert _wait_http(f"http://127.0.0.1:{chp.public}/hub/metrics", 10) == 403
        # the culler's first pass runs right after it starts: it must be allowed to list users
        culled = re.compile(r"200 GET /hub/api/users\S* \(idle-culler@")
        deadline = time.monotonic() + 30
        while not culled.search((tmp_path / "hub.log").read_text()):
            assert time.monotonic() < deadline, (tmp_path / "hub.log").read_text()[-3000:]
            assert "403 GET /hub/api/users" not in (tmp_path / "hub.log").read_text()
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        # JupyterHub stops its managed services with SIGINT, SIGTERM, then SIGKILL, waiting up
        # to 30 + 30 + 5 s (jupyterhub/spawner.py LocalProcessSpawner interrupt_timeout,
        # term_timeout, kill_timeout); a loaded CI run once took 32 s, past a 30 s wait.
        proc.wait(90)
    finally:
        # also ends the hub's managed services if the hub did not (their sessions)
        stack.stop_process(proc)
    log.seek(0)
    text = log.read()
    assert "idle-culler" in text and "Starting managed service" in text, text[-3000:]
    assert "a1" * 32 not in text and chp.token not in text  # no secret in the log
    # the hub's exit left the proxy and its routes alone
    assert chp.proc.poll() is None
    assert "/" in _get_json(f"http://127.0.0.1:{chp.api}/api/routes", chp.token)


# --------------------------------------------------------------------------------------------
# a real user container (Docker engine; the notebook stand-in image of tests/integration)


@pytest.fixture
def engine_and_image(docker_engine, notebook_image):
    """The session's Docker engine and the local notebook stand-in image."""
    return docker_engine, notebook_image


def test_real_user_container(load, base_env, tmp_path, engine_and_image):
    """Hook + DockerSpawner + engine: uid, caps, mounts and env as the user sees them."""
    client, image = engine_and_image
    homes = Path(base_env["JHC_HOMES_HUB_DIR"])
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, 0, 100)
    shared.chmod(0o2775)
    dataset = tmp_path / "census"
    dataset.mkdir()
    (dataset / "data.csv").write_text("a,b\n")
    dataset.chmod(0o777)  # only the read-only mount may stop the user from writing
    env = {
        **base_env,
        "JHC_IMAGES_JSON": json.dumps([{"name": "nb", "image": image}]),
        "JHC_NETWORK": "bridge",
        "JHC_HOMES_HOST_DIR": str(homes),
        "JHC_SHARED_HOST_DIR": str(shared),
        "JHC_DATASETS_JSON": json.dumps([{"name": "census", "host_path": str(dataset)}]),
        "JHC_DB_PASSWORD": "leak-me",
    }
    cfg = load(env)
    spawner = make_spawner(cfg, FakeUser("alice", (), {"uid_number": 10001}))
    spawner.user_options = {}
    run(cfg.Spawner.pre_spawn_hook(spawner))
    spawner.api_token = "the-api-token"
    spawner.hub = SimpleNamespace(api_url="http://127.0.0.1:9/hub/api", base_url="/hub/",
                                  public_host="")
    spawner.environment = {**spawner.environment, "JHC_PRIVDROP": "sudo"}  # drop like start.sh
    report = "/home/alice/report"
    spawner.cmd = ["bash", "-c", " ; ".join([
        f"exec > {report} 2>&1",
        "echo uid=$(id -u) gid=$(id -g) pwd=$PWD",
        "grep CapEff /proc/self/status",
        "touch /home/alice/mine && echo home=ok",
        "touch /home/alice/shared/ours && echo shared=ok",
        "touch /home/alice/datasets/census/x 2>/dev/null && echo dataset=WRITABLE",
        "cat /home/alice/datasets/census/data.csv >/dev/null && echo dataset=readable",
        "test -e /var/run/docker.sock && echo DOCKER_SOCKET",
        "env > /home/alice/env.txt",
        "echo token=${JUPYTERHUB_API_TOKEN}",
        "sudo -n true 2>/dev/null && echo SUDO_WORKS",
        "echo done",
        "sleep 60",
    ]), "--"]
    import time

    import docker.errors

    container_id = None
    try:
        run(spawner.start())
        container_id = spawner.container_id
        attrs = client.api.inspect_container(container_id)
        assert attrs["Config"]["User"] == "root"
        assert attrs["Config"]["WorkingDir"] == "/home/alice"
        assert attrs["HostConfig"]["CapDrop"] == ["ALL"]
        assert attrs["HostConfig"]["SecurityOpt"] == ["no-new-privileges:true"]
        assert attrs["HostConfig"]["AutoRemove"] is True
        deadline = time.monotonic() + 120
        report_file = homes / "alice" / "report"
        while not (report_file.exists() and "done" in report_file.read_text().splitlines()):
            logs = client.api.logs(container_id)[-2000:]
            assert time.monotonic() < deadline, logs
            time.sleep(0.5)
    finally:
        if container_id:
            try:
                client.api.remove_container(container_id, force=True)
            except docker.errors.APIError as err:
                if err.status_code not in (404, 409):
                    raise
    text = report_file.read_text()
    assert "uid=10001 gid=100 pwd=/home/alice" in text, text
    assert "CapEff:\t0000000000000000" in text, text
    for line in ["home=ok", "shared=ok", "dataset=readable", "token=the-api-token", "done"]:
        assert line in text.splitlines(), text
    for bad in ["dataset=WRITABLE", "DOCKER_SOCKET", "SUDO_WORKS"]:
        assert bad not in text.splitlines(), text
    container_env = (homes / "alice" / "env.txt").read_text()
    assert "JUPYTERHUB_API_TOKEN=the-api-token" in container_env.splitlines()
    assert "leak-me" not in container_env
    assert not re.search(r"^(JHC_(?!PRIVDROP)|CONFIGPROXY|JUPYTERHUB_CRYPT)", container_env, re.M)
    assert (homes / "alice" / "mine").stat().st_uid == 10001
    assert (shared / "ours").stat().st_uid == 10001
    assert list(dataset.iterdir()) == [dataset / "data.csv"]

