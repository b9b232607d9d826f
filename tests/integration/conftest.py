"""Session fixtures for tests that need a real Docker engine (root, CI or a dev machine).

Why: JupyterHub + DockerSpawner tests must spawn real containers. The engine is started with
scripts/ci-docker.sh (reused if one already answers) and the images are built locally from a
debootstrap rootfs, since no registry is reachable. Teardown stops only what these fixtures
started, because other sessions on the same machine may share the engine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import stack
from docker_helpers import ensure_notebook_image, running_engine

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
    """A Docker SDK client for a running engine (docker_helpers.running_engine)."""
    try:
        with running_engine() as client:
            yield client
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def notebook_image(docker_engine: docker.DockerClient) -> str:
    """Tag of the test notebook image (docker-stacks start contract), built only if missing.

    Build output goes to BUILD_LOG (default /tmp/jhc-test-images.log).
    """
    return ensure_notebook_image(docker_engine, BUILD_LOG)


#: The stack config of the scenarios (raw, as `pulumi config` holds it): an admin, a normal
#: physicist, a student (may log in, but not start the physics-only image), a chemist (outside
#: allowedGroups) and a blocked physicist; limits and a dataset as an operator would set them.
PLATFORM_CONFIG: dict[str, object] = {
    "groups": [{"name": "physics"}, {"name": "students"}, {"name": "chemistry"}],
    "users": [
        {"name": "ada", "fullName": "Ada Lovelace", "email": "ada@example.org",
         "groups": ["physics"], "admin": True},
        {"name": "ben", "fullName": "Ben Franklin", "groups": ["physics"]},
        {"name": "eli", "fullName": "Eli Whitney", "groups": ["students"]},
        {"name": "cyd", "groups": ["chemistry"]},
        {"name": "dov", "groups": ["physics"]},
    ],
    "allowedGroups": ["physics", "students"],
    "blockedUsers": ["dov"],
    "images": [
        {"name": "minimal", "displayName": "Minimal Python", "path": "minimal"},
        {"name": "scipy", "displayName": "SciPy (physics)", "path": "scipy",
         "groups": ["physics"]},
    ],
    "datasets": [{"name": "census"}],
    "memLimit": "512M",
    "cpuLimit": "0.5",
    "cullIdleTimeout": 3600,
}


@pytest.fixture(scope="session")
def platform(
    docker_engine: docker.DockerClient, notebook_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[stack.Platform]:
    """The whole platform once per session: slapd (bootstrap + reconcile), PostgreSQL, a
    network, configurable-http-proxy and JupyterHub with the project's config."""
    deployed = stack.start_platform(tmp_path_factory.mktemp("platform"), docker_engine,
                                    notebook_image, PLATFORM_CONFIG)
    try:
        yield deployed
    finally:
        stack.stop_platform(deployed)


@pytest.fixture(scope="session")
def admin(platform: stack.Platform) -> stack.TokenClient:
    """An API token of the admin ada, obtained through a real login."""
    browser = stack.Browser(platform.hub.url)
    assert browser.login("ada", platform.passwords["ada"]).status_code == 302
    return stack.TokenClient(platform.hub.url, browser.new_token("ada"))


@pytest.fixture(scope="session")
def user_client(platform: stack.Platform, admin: stack.TokenClient):
    """user_client(name): a TokenClient with that user's own token, after a real login (the
    login stores uidNumber and groups in auth_state, which the spawn needs)."""
    clients: dict[str, stack.TokenClient] = {}

    def get(name: str) -> stack.TokenClient:
        if name not in clients:
            browser = stack.Browser(platform.hub.url)
            response = browser.login(name, platform.passwords[name])
            assert response.status_code == 302, response.text[-500:]
            clients[name] = stack.TokenClient(platform.hub.url, browser.new_token(name))
        return clients[name]

    return get
