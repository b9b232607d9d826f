"""The backup image built from services/backup/Dockerfile, run by the real Docker engine.

Why: the container's healthcheck is how a failed backup becomes visible ("unhealthy until a run
succeeds"), and `jhc-backup status` is the one command that shows the last success. Both are
checked here with Docker's own health machinery against a real platform (PostgreSQL, slapd).
The official postgres image cannot be pulled here, so the Dockerfile's POSTGRES_IMAGE build
argument points at a stand-in: the Debian bookworm test base plus Debian's PostgreSQL client
(pg_dump 15, the major of the test server). Everything else is the production Dockerfile.
The container uses the host's network, so it reaches the loopback-only test services.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import docker.models.containers
import pytest
import stack
from docker_helpers import ensure_base_image

BUILD_LOG = Path(os.environ.get("JHC_TEST_BUILD_LOG", "/tmp/jhc-test-images.log"))
PG_STANDIN = "jhc-backup-it/postgres-client:bookworm"
IMAGE = "jhc-backup-it/backup:test"
CONFIG: dict[str, object] = {"users": [{"name": "ada", "admin": True}]}


def _build(client: docker.DockerClient, **kwargs: object) -> None:
    try:
        client.images.build(network_mode="host", rm=True, forcerm=True, **kwargs)
    except docker.errors.BuildError as error:
        log = "".join(c.get("stream", "") for c in error.build_log if isinstance(c, dict))
        pytest.fail(f"image build failed: {error}\n{log[-3000:]}")


@pytest.fixture(scope="module")
def backup_image(docker_engine: docker.DockerClient) -> str:
    base = ensure_base_image(docker_engine, BUILD_LOG)
    dockerfile = (f"FROM {base}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive "
                  "apt-get install -y --no-install-recommends postgresql-client "
                  "&& rm -rf /var/lib/apt/lists/*\n")
    _build(docker_engine, fileobj=io.BytesIO(dockerfile.encode()), tag=PG_STANDIN)
    _build(docker_engine, path=str(stack.REPO / "services" / "backup"), tag=IMAGE,
           buildargs={"POSTGRES_IMAGE": PG_STANDIN})
    return IMAGE


@pytest.fixture
def platform(docker_engine: docker.DockerClient, tmp_path: Path) -> Iterator[stack.Platform]:
    tmp_path.chmod(0o755)
    deployed = stack.start_platform(tmp_path / "platform", docker_engine, "jhc-backup-it:none",
                                    CONFIG)
    try:
        yield deployed
    finally:
        stack.stop_platform(deployed)


def _health(container: docker.models.containers.Container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "none")


def test_container_is_unhealthy_until_a_backup_succeeds(
        docker_engine: docker.DockerClient, backup_image: str, platform: stack.Platform,
        tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    stack.write_secret(secrets_dir / "restic-password", secrets.token_urlsafe(24))
    pg_password = stack.write_secret(secrets_dir / "postgres-password", "wrong-password")
    for name in ("cookie-secret", "crypt-key"):
        stack.write_secret(secrets_dir / name, secrets.token_hex(32))
    (tmp_path / "repository").mkdir()
    ldap_root = str(platform.ldap.root)
    container = docker_engine.containers.run(
        backup_image, name=f"jhc-backup-it-{secrets.token_hex(4)}", detach=True,
        network_mode="host", labels={stack.LABEL: "1"},
        environment={
            "RESTIC_REPOSITORY": "/repository", "JHC_PG_HOST": "127.0.0.1",
            "JHC_PG_PORT": str(platform.postgres.port),
            "JHC_LDAP_CONFIG_DIR": f"{ldap_root}/config",
            "JHC_BACKUP_TIME": "12:00", "JHC_BACKUP_HOST": "jhc-it"},
        volumes={str(platform.data_dir): {"bind": "/data", "mode": "rw"},
                 ldap_root: {"bind": ldap_root, "mode": "rw"},
                 str(secrets_dir): {"bind": "/run/secrets", "mode": "ro"},
                 str(tmp_path / "repository"): {"bind": "/repository", "mode": "rw"}},
        # the image's own healthcheck command (no "test": inherited), probed every second
        healthcheck={"interval": 1_000_000_000,
                     "timeout": 10_000_000_000, "retries": 1,
                     "start_period": 1_000_000})  # 0 would inherit the image's 2 minutes
    try:
        # the first run (at start) cannot log in to PostgreSQL: loud, and unhealthy
        stack.wait_until(lambda: b"BACKUP FAILED" in container.logs(), 120, "the failed run")
        stack.wait_until(lambda: _health(container) == "unhealthy", 30, "unhealthy")
        status = container.exec_run(["jhc-backup", "status"]).output.decode()
        assert "last success: never" in status and "last failure: 20" in status, status

        pg_password.write_text(platform.postgres.password + "\n")
        run = container.exec_run(["jhc-backup", "run"])
        assert run.exit_code == 0, run.output.decode()[-3000:]
        stack.wait_until(lambda: _health(container) == "healthy", 60, "healthy")
        status = container.exec_run(["jhc-backup", "status"]).output.decode()
        assert "last success: 20" in status and "1 snapshots" in status, status
        verify = container.exec_run(["jhc-backup", "verify"])
        assert verify.exit_code == 0 and b"restorable" in verify.output, verify.output[-2000:]
        # SIGTERM ends the sleeping loop cleanly (exit 0); ignored, docker would SIGKILL it
        # at the end of the grace period (exit 137)
        container.stop(timeout=20)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0, container.attrs["State"]
    finally:
        container.remove(force=True)
