"""Session fixtures for tests that need a real Docker engine (root, CI or a dev machine).

Why: JupyterHub + DockerSpawner tests must spawn real containers. The engine is started with
scripts/ci-docker.sh (reused if one already answers) and the images are built locally from a
debootstrap rootfs, since no registry is reachable. Teardown stops only what these fixtures
started, because other sessions on the same machine may share the engine.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker_helpers import CI_DOCKER, ensure_notebook_image

HERE = Path(__file__).resolve().parent
BUILD_LOG = Path(os.environ.get("JHC_TEST_BUILD_LOG", "/tmp/jhc-test-images.log"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs a real Docker engine as root (tests/integration)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/integration is an integration test; `-m "not integration"` skips it.
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[docker.DockerClient]:
    """A Docker SDK client for a running engine; stops dockerd at the end only if it started it.

    Set JHC_KEEP_DOCKERD=1 to leave a dockerd this fixture started running (faster reruns,
    or when parallel sessions share it).
    """
    if os.geteuid() != 0:
        pytest.skip("the Docker engine fixture needs root (CI runs as root)")
    result = subprocess.run(
        [str(CI_DOCKER), "start"], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"ci-docker.sh start failed ({result.returncode}):\n{result.stderr}")
    started = result.stdout.strip().splitlines()[-1:] == ["started"]
    client = docker.from_env(timeout=600)
    try:
        yield client
    finally:
        client.close()
        if started and os.environ.get("JHC_KEEP_DOCKERD") != "1":
            subprocess.run([str(CI_DOCKER), "stop"], timeout=120, check=False)


@pytest.fixture(scope="session")
def notebook_image(docker_engine: docker.DockerClient) -> str:
    """Tag of the test notebook image (docker-stacks start contract), built only if missing.

    Build output goes to BUILD_LOG (default /tmp/jhc-test-images.log).
    """
    return ensure_notebook_image(docker_engine, BUILD_LOG)
