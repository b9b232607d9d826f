"""Scenarios on the local stack as declared by the program and applied to a real engine.

The tests share one deployment (session fixture) and run in file order: the person's path
starts nora's server, which the network scenarios inspect; the service change comes last.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
from pathlib import Path
from typing import Any

import docker
import isolation
import person
import pytest
from conftest import BUILD_LOG, PREFIX, Deployment, user_containers
from docker_helpers import ensure_base_image

from components.platform.endpoints import HUB

FRONTEND = f"{PREFIX}-frontend"
BACKEND = f"{PREFIX}-backend"


def engine_snapshot(engine: docker.DockerClient, deployment: Deployment) -> dict[str, str]:
    """Engine-side ids of everything the stack declares: containers and networks by name, and
    the image each container runs."""
    snap: dict[str, str] = {}
    for applied in deployment.applier.state.values():
        if applied.type.endswith("container:Container"):
            container = engine.containers.get(applied.inputs["name"])
            snap[f"container {container.name}"] = container.id
            snap[f"image of {container.name}"] = container.attrs["Image"]
        elif applied.type.endswith("network:Network"):
            snap[f"network {applied.inputs['name']}"] = engine.networks.get(applied.inputs["name"]).id
    return snap


def in_container(container: Any, code: str) -> dict[str, Any]:
    """Runs python3 code as the container's user (NB_UID) and returns its JSON output."""
    uid = container.attrs["Config"]["Env"]
    nb_uid = next(e.split("=", 1)[1] for e in uid if e.startswith("NB_UID="))
    result = container.exec_run(["python3", "-c", code], user=f"{nb_uid}:100")
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return json.loads(result.output.decode().strip().splitlines()[-1])


# --------------------------------------------------------------------------- 1. a person's path

def test_a_person_logs_in_picks_an_image_and_writes_a_file_from_jupyterlab(
        deployment: Deployment, browser: Any, artifacts: Path, engine: docker.DockerClient) -> None:
    driver = browser()
    person.open_login(driver, deployment.url)
    person.shot(driver, artifacts, "01-login-page")

    person.log_in(driver, deployment.url, "nora", deployment.passwords["nora"])
    # nora is a physicist: the common image and the physics one, never the students' R image.
    assert person.menu_choices(driver) == {"minimal": "Python (minimal)",
                                           "scipy": "SciPy (physics)"}
    person.shot(driver, artifacts, "02-image-menu")

    person.start_with(driver, "scipy")
    person.wait_for_lab(driver, f"{deployment.url}/user/nora/lab")
    person.shot(driver, artifacts, "03-jupyterlab")

    marker = secrets.token_hex(8)
    output = person.run_in_new_notebook(
        driver, f"import os, pathlib; p = pathlib.Path.home() / 'from-lab-{marker}.txt'; "
                f"p.write_text('{marker}'); print('wrote', p, os.getuid())", "wrote")
    person.shot(driver, artifacts, "04-cell-ran")

    written = deployment.data_dir / "homes" / "nora" / f"from-lab-{marker}.txt"
    assert written.read_text() == marker
    server = engine.containers.get("jupyter-nora")
    # The cell ran as nora's own uid (not root, not jovyan), which owns the file on the volume.
    uid = written.stat().st_uid
    assert uid >= 1000 and f"/home/nora/from-lab-{marker}.txt {uid}" in output
    # ... in the image she picked: the one the program built for "scipy".
    assert server.attrs["Image"] == deployment.applier.state["jhc-images-scipy"].outputs["ref"]


# ------------------------------------------------------------------ 2. refusals in the browser

def test_a_wrong_password_is_refused_at_the_login_page(deployment: Deployment, browser: Any) -> None:
    driver = browser()
    person.log_in(driver, deployment.url, "sam", deployment.passwords["sam"] + "x")
    assert not person.logged_in(driver)
    assert "Invalid username or password" in person.login_error(driver)


def test_a_user_outside_the_allowed_groups_is_refused_but_an_allowed_one_gets_in(
        deployment: Deployment, browser: Any) -> None:
    driver = browser()
    # olga's password is right; her group (chemistry) is not in allowedGroups.
    person.log_in(driver, deployment.url, "olga", deployment.passwords["olga"])
    assert not person.logged_in(driver)
    assert person.login_error(driver)
    # The same path with a student (an allowed group) reaches the image menu.
    person.log_in(driver, deployment.url, "sam", deployment.passwords["sam"])
    assert person.menu_choices(driver) == {"minimal": "Python (minimal)", "r": "R (students)"}


def test_an_image_outside_the_users_menu_is_refused(
        deployment: Deployment, browser: Any, engine: docker.DockerClient) -> None:
    driver = browser()
    person.log_in(driver, deployment.url, "sam", deployment.passwords["sam"])
    person.menu_choices(driver)
    # A student asks for the physics image by hand (the spawn form's field, in the query).
    driver.get(f"{deployment.url}/hub/spawn?image=scipy")
    text = person.wait(driver, lambda d: "scipy" in d.find_element("tag name", "body").text
                       and d.find_element("tag name", "body").text, 120, "the refusal")
    assert "not allowed" in text.lower() or "not in" in text.lower(), text
    sams = [c for c in user_containers(engine, FRONTEND) if c.name == "jupyter-sam"]
    scipy = deployment.applier.state["jhc-images-scipy"].outputs["ref"]
    assert all(c.attrs["Image"] != scipy for c in sams)


# ------------------------------------------------------------------------- 5. network exposure

def test_a_user_container_reaches_the_hub_and_cannot_resolve_backend_services(
        deployment: Deployment, engine: docker.DockerClient) -> None:
    server = engine.containers.get("jupyter-nora")  # started by the person's path above
    assert set(server.attrs["NetworkSettings"]["Networks"]) == {FRONTEND}
    seen = in_container(server, """
import json, socket, urllib.request
out = {"hub": urllib.request.urlopen("http://jupyterhub:8081/hub/api", timeout=5).status}
for name in ("postgres", "ldap"):
    try:
        out[name] = socket.gethostbyname(name)
    except OSError as error:
        out[name] = "unresolved"
print(json.dumps(out))
""")
    assert seen == {"hub": 200, "postgres": "unresolved", "ldap": "unresolved"}


def test_on_an_engine_that_enforces_isolation_a_user_container_reaches_the_hub_and_nothing_on_the_backend(
        deployment: Deployment, engine: docker.DockerClient) -> None:
    """The shared engine runs with --iptables=false and cannot isolate networks; the deployed
    topology (networks with their `internal` flag, every running container's networks, aliases
    and listening ports, nora's server as the real DockerSpawner placed it) is replayed on a
    second engine that enforces isolation (tests/e2e/isolation.py says how), and probed there."""
    flags, containers = isolation.deployed_topology(engine, [FRONTEND, BACKEND])
    by_name = {c.name: c for c in containers}
    assert "jupyter-nora" in by_name  # started by the person's path above
    hub = next(c for c in containers if HUB.host in c.networks.get(FRONTEND, []))
    base = ensure_base_image(engine, BUILD_LOG)
    with isolation.isolating_engine(Path(f"/run/jhc-iso-{os.getpid()}")) as iso:
        assert "DOCKER-ISOLATION-STAGE-1" in iso.iptables_rules()
        isolation.copy_image(engine, iso.client, base)
        isolation.replay(iso, base, flags, containers)
        with isolation.outside(iso):
            backend = [(c.addresses[BACKEND], port) for c in containers if BACKEND in c.networks
                       for port in c.ports]
            assert {c.name for c in containers if BACKEND in c.networks} >= {
                f"{PREFIX}-postgres", f"{PREFIX}-ldap"} and backend
            beyond = (isolation.OUTSIDE_IP, isolation.OUTSIDE_PORT)
            hub_port = (HUB.host, HUB.port)

            # Controls: the listeners answer on the backend (from the hub), and the engine
            # forwards a frontend container's traffic beyond the host (users install packages).
            assert set(isolation.probe(iso, hub.name, backend).values()) == {"connected"}

            # The property: nora's server reaches the hub and the world, nothing on the backend.
            seen = isolation.probe(iso, "jupyter-nora", [hub_port, beyond, *backend])
            assert seen.pop(f"{HUB.host}:{HUB.port}") == "connected"
            assert seen.pop(f"{beyond[0]}:{beyond[1]}") == "connected"
            assert isolation.connected(seen) == [], "a user server reached the backend"

            # `internal`: a backend-only service (PostgreSQL, LDAP) reaches nothing beyond its
            # network, neither the outside nor the frontend's addresses.
            frontend = [(c.addresses[FRONTEND], port) for c in containers
                        if FRONTEND in c.networks for port in c.ports]
            for service in (c for c in containers if c.only_on(BACKEND)):
                seen = isolation.probe(iso, service.name, [beyond, *frontend])
                assert isolation.connected(seen) == [], f"{service.name} reached beyond its network"


def test_caddy_is_the_only_published_port_and_it_is_bound_to_loopback(
        deployment: Deployment, engine: docker.DockerClient) -> None:
    published: dict[str, Any] = {}
    stack = [engine.containers.get(a.inputs["name"]) for a in deployment.applier.state.values()
             if a.type.endswith("container:Container")]
    for container in stack + user_containers(engine, FRONTEND):
        bindings = container.attrs["HostConfig"]["PortBindings"] or {}
        if bindings:
            published[container.name] = {port: [(b["HostIp"], b["HostPort"]) for b in hosts]
                                         for port, hosts in bindings.items()}
    # Pulumi.local.yaml's ports, overridden by this test with free ones; on 127.0.0.1 only.
    assert published == {f"{PREFIX}-caddy": {
        "80/tcp": [("127.0.0.1", str(deployment.http_port))],
        "443/tcp": [("127.0.0.1", str(deployment.https_port))]}}


# ------------------------------------------------------------------------ 3. the same graph again

def test_applying_the_same_graph_again_replaces_nothing(
        deployment: Deployment, engine: docker.DockerClient) -> None:
    before = engine_snapshot(engine, deployment)
    report = deployment.applier.apply(deployment.declare())
    assert report.changed() == {}
    assert engine_snapshot(engine, deployment) == before


# ------------------------------------------------------------------------- 4. a service change

def test_a_service_change_replaces_only_the_hub_reruns_the_ldap_reconcile_and_the_new_user_logs_in(
        deployment: Deployment, engine: docker.DockerClient, browser: Any) -> None:
    before = engine_snapshot(engine, deployment)
    nora_server = engine.containers.get("jupyter-nora").id
    homes_before = sorted(p.name for p in (deployment.data_dir / "homes" / "nora").iterdir())

    config = copy.deepcopy(deployment.config)
    config["users"].append({"name": "pia", "fullName": "Pia New", "groups": ["physics"]})
    config["images"][2]["displayName"] = "R 4 (students)"   # the image menu changed
    config["memLimit"] = "1G"                                # a limit changed
    report = deployment.apply(config)
    after = engine_snapshot(engine, deployment)

    changed = {k for k in before if before[k] != after.get(k)}
    # pulumi-docker replaces a Container when any ForceNew input changes (uploads): the hub's
    # settings document (users, menu, limit). The LDAP reconcile is a pulumi-command Command
    # whose stdin (the desired users) changed: an update, which runs its create script again.
    assert changed == {f"container {PREFIX}-hub"}
    assert report.changed() == {"jhc-hub-container": "replace",
                                "jhc-ldap-reconcile": "update"}
    # Data stays; the running user server survives the hub's replacement (separate proxy).
    assert engine.containers.get("jupyter-nora").id == nora_server
    assert sorted(p.name for p in (deployment.data_dir / "homes" / "nora").iterdir()) == homes_before

    driver = browser()
    person.log_in(driver, deployment.url, "pia", deployment.passwords["pia"])
    assert person.menu_choices(driver) == {"minimal": "Python (minimal)",
                                           "scipy": "SciPy (physics)"}


# ------------------------------------------- 6. teardown keeping data, a fresh apply, new secrets

def test_a_redeploy_with_all_new_secrets_on_the_kept_data_lets_the_earlier_user_find_her_file(
        deployment: Deployment, engine: docker.DockerClient, browser: Any) -> None:
    home = deployment.data_dir / "homes" / "nora"
    earlier = sorted(home.glob("from-lab-*.txt"))
    assert earlier, "the person's path (first test) wrote no file to find again"
    marker = earlier[-1].read_text()
    old_secrets = dict(deployment.secret_store)
    old_password = deployment.passwords["nora"]
    assert engine.containers.get("jupyter-nora")  # her server runs on the frontend network

    # `pulumi destroy`: the program's cleanup command removes her server, so the frontend
    # network can go; bind-mounted data stays on the disk.
    deployment.applier.destroy()
    assert not deployment.applier.state
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get("jupyter-nora")
    assert not [n for n in engine.networks.list() if n.name in (FRONTEND, BACKEND)]
    assert earlier[-1].read_text() == marker

    # A new stack on the kept data: every random secret generated again.
    deployment.secret_store.clear()
    deployment.apply(deployment.config)
    assert set(deployment.secret_store) == set(old_secrets)
    assert all(deployment.secret_store[k] != old_secrets[k] for k in old_secrets)
    assert deployment.passwords["nora"] != old_password

    driver = browser()
    person.log_in(driver, deployment.url, "nora", old_password)
    assert not person.logged_in(driver)  # LDAP converged to the new password
    person.log_in(driver, deployment.url, "nora", deployment.passwords["nora"])
    person.start_with(driver, "scipy")
    # Her home kept JupyterLab's workspace too: it reopens her earlier notebook instead of the
    # launcher. `?reset` starts from a fresh workspace (JupyterLab docs, "URLs": workspaces).
    person.wait_for_lab(driver, f"{deployment.url}/user/nora/lab", selector=person.LAB_SHELL)
    driver.get(f"{deployment.url}/user/nora/lab?reset")
    person.wait_for_lab(driver, f"{deployment.url}/user/nora/lab?reset")
    output = person.run_in_new_notebook(
        driver, f"import pathlib; print('found', (pathlib.Path.home() / "
                f"'{earlier[-1].name}').read_text())", "found")
    assert f"found {marker}" in output
