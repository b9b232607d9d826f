"""Smoke test of the Docker test infrastructure and of the notebook start contract.

Why: the platform runs user containers started as root with NB_USER/NB_UID/NB_GID (the
docker-stacks contract) and relies on them ending up as the LDAP uid with gid 100 and a
writable bind-mounted home, also when hardened with no-new-privileges and a minimal cap set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import docker
import pytest
from docker_helpers import NOTEBOOK_CAP_ADD

UID, GID, USER = 12345, 100, "alice"
PROBE = 'echo "uid=$(id -u)"; echo "gid=$(id -g)"; touch "$HOME/probe" && echo touched; ' + (
    "grep ^CapEff /proc/self/status"
)
HARDENED: dict[str, Any] = {
    "security_opt": ["no-new-privileges"],
    "cap_drop": ["ALL"],
    "cap_add": list(NOTEBOOK_CAP_ADD),
}


def run_once(
    client: docker.DockerClient, image: str, env: dict[str, str], **kwargs: Any
) -> tuple[int, list[str]]:
    """Run the probe in a fresh container (entrypoint kept), return exit code and output lines."""
    container = client.containers.run(
        image,
        ["bash", "-c", PROBE],
        environment={"NB_USER": USER, "NB_UID": str(UID), "NB_GID": str(GID), **env},
        user="root",
        detach=True,
        labels={"org.jupyterhub-cloud.test": "engine-smoke"},
        **kwargs,
    )
    try:
        status = container.wait(timeout=120)
        output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return status["StatusCode"], output.splitlines()


def user_home(tmp_path: Path) -> Path:
    """A host directory standing in for /srv/jupyterhub/homes/<user>: pre-created, owned."""
    home = tmp_path / USER
    home.mkdir()
    os.chown(home, UID, GID)
    home.chmod(0o750)
    return home


def mount(home: Path) -> dict[str, Any]:
    return {"volumes": {str(home): {"bind": f"/home/{USER}", "mode": "rw"}}}


@pytest.mark.parametrize(
    ("hardening", "privdrop"),
    [({}, "setpriv"), (HARDENED, "setpriv"), (HARDENED, "sudo")],
    ids=["default-caps", "hardened-setpriv", "hardened-sudo"],
)
def test_root_start_drops_to_nb_uid_with_writable_home(
    docker_engine: docker.DockerClient,
    notebook_image: str,
    tmp_path: Path,
    hardening: dict[str, Any],
    privdrop: str,
) -> None:
    home = user_home(tmp_path)
    code, lines = run_once(
        docker_engine, notebook_image, {"JHC_PRIVDROP": privdrop}, **hardening, **mount(home)
    )
    assert code == 0, lines
    assert f"uid={UID}" in lines and f"gid={GID}" in lines, lines
    assert "touched" in lines, lines
    # No capability survives the drop (a root-looking uid 12345 with caps would still be root).
    assert "CapEff:\t0000000000000000" in lines, lines
    probe = home / "probe"
    assert (probe.stat().st_uid, probe.stat().st_gid) == (UID, GID)


def test_hardened_start_creates_a_missing_home(
    docker_engine: docker.DockerClient, notebook_image: str
) -> None:
    code, lines = run_once(docker_engine, notebook_image, {}, **HARDENED)
    assert code == 0, lines
    assert f"uid={UID}" in lines and "touched" in lines, lines


@pytest.mark.parametrize("missing", NOTEBOOK_CAP_ADD)
def test_every_cap_of_the_minimal_set_is_needed(
    docker_engine: docker.DockerClient, notebook_image: str, tmp_path: Path, missing: str
) -> None:
    hardening = {**HARDENED, "cap_add": [c for c in NOTEBOOK_CAP_ADD if c != missing]}
    code, lines = run_once(docker_engine, notebook_image, {}, **hardening, **mount(user_home(tmp_path)))
    # The start script must fail closed, never run the command as root instead.
    assert code != 0, lines
    assert not any(line.startswith("uid=") for line in lines), lines


def test_root_is_refused_as_nb_uid(docker_engine: docker.DockerClient, notebook_image: str) -> None:
    code, lines = run_once(docker_engine, notebook_image, {"NB_UID": "0"})
    assert code != 0
    assert "uid=0" not in lines, lines
