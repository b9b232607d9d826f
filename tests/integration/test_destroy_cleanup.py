"""scripts/remove-user-servers.sh against the real Docker engine: with a user server on the
frontend network the network cannot be removed; after the destroy-time step it can, and the
containers Pulumi manages are left to Pulumi."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from docker_helpers import ensure_base_image

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "remove-user-servers.sh"
MANAGED = "org.jupyterhub-cloud.managed"  # components.platform.containers.LABELS


@pytest.fixture()
def frontend(docker_engine: docker.DockerClient, tmp_path: Path) -> Iterator[dict]:
    image = ensure_base_image(docker_engine, Path("/tmp/jhc-test-images.log"))
    prefix = f"host-cleanup-{uuid.uuid4().hex[:8]}"
    network = docker_engine.networks.create(f"{prefix}-frontend")
    made = []
    try:
        # A user server as DockerSpawner starts it: no project label, on the frontend network.
        made.append(docker_engine.containers.run(
            image, ["sleep", "infinity"], name=f"{prefix}-jupyter-alice", network=network.name,
            detach=True, init=True))
        # A container Pulumi manages (the proxy, the hub): the script must leave it alone.
        made.append(docker_engine.containers.run(
            image, ["sleep", "infinity"], name=f"{prefix}-proxy", network=network.name,
            labels={MANAGED: "true"}, detach=True, init=True))
        yield {"client": docker_engine, "network": network, "user": made[0], "managed": made[1]}
    finally:
        for container in made:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
        try:
            network.remove()
        except docker.errors.NotFound:
            pass


def run_script(network: str, **env: str) -> subprocess.CompletedProcess:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "JHC_DOCKER_HOST": host, "JHC_NETWORK": network,
             "JHC_MANAGED_LABEL": MANAGED, **env})


def test_network_removal_needs_the_cleanup(frontend: dict) -> None:
    client, network = frontend["client"], frontend["network"]
    frontend["managed"].remove(force=True)  # Pulumi deletes its own containers first
    with pytest.raises(docker.errors.APIError, match="active endpoints"):
        network.remove()  # what `pulumi destroy` ran into
    result = run_script(network.name)
    assert result.returncode == 0, result.stderr
    assert "removed user server" in result.stdout and "jupyter-alice" in result.stdout
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(frontend["user"].id)
    network.remove()  # now succeeds
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(network.id)


def test_managed_containers_are_left_to_pulumi(frontend: dict) -> None:
    result = run_script(frontend["network"].name)
    assert result.returncode == 0, result.stderr
    frontend["managed"].reload()
    assert frontend["managed"].status == "running"


def test_missing_network_is_not_an_error(frontend: dict) -> None:
    result = run_script("host-cleanup-no-such-network")
    assert result.returncode == 0, result.stderr
    assert "does not exist" in result.stdout


def test_unreachable_engine_fails_loudly(frontend: dict, tmp_path: Path) -> None:
    result = run_script(frontend["network"].name,
                        JHC_DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert result.returncode != 0
    frontend["user"].reload()
    assert frontend["user"].status == "running"


def test_destroy_with_a_server_the_real_hub_spawned(
        docker_engine: docker.DockerClient, notebook_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same order `pulumi destroy` follows (hub gone first, then the cleanup step, then the
    network), with a user server that the real hub and DockerSpawner started."""
    import stack
    config = {"groups": [{"name": "lab"}], "users": [{"name": "vera", "groups": ["lab"]}],
              "allowedGroups": ["lab"],
              "images": [{"name": "minimal", "displayName": "Minimal", "path": "minimal"}],
              "memLimit": "512M", "cpuLimit": "0.5"}
    platform = stack.start_platform(tmp_path_factory.mktemp("destroy"), docker_engine,
                                    notebook_image, config)
    try:
        browser = stack.Browser(platform.hub.url)
        assert browser.login("vera", platform.passwords["vera"]).status_code == 302
        vera = stack.TokenClient(platform.hub.url, browser.new_token("vera"))
        assert vera.start_server("vera", {"image": "minimal"}).status_code in (201, 202)
        vera.wait_ready("vera")
        spawned = [c for c in platform.network.containers() if c.name.startswith("jupyter-")]
        assert [c.name for c in spawned] == ["jupyter-vera"]
        platform.hub.stop()  # Pulumi deletes the hub before the cleanup step (dependsOn)
        platform.proxy.stop()
        network = docker_engine.networks.get(platform.network.name)
        with pytest.raises(docker.errors.APIError, match="active endpoints"):
            network.remove()
        result = run_script(platform.network.name)
        assert result.returncode == 0, result.stderr
        assert "jupyter-vera" in result.stdout
        network.remove()
        with pytest.raises(docker.errors.NotFound):
            docker_engine.networks.get(platform.network.name)
        # the user's data stays: only the container went
        assert (platform.data_dir / "homes" / "vera").is_dir()
    finally:
        stack.stop_platform(platform)
