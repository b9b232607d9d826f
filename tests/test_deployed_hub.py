"""The hub exactly as the program deploys it: its environment and secret files, loaded for real.

Tests of components/platform/hub.py alone can only compare variable names; tests of jupyterhub_config.py
alone feed it hand-written environments. Here the Pulumi program runs under mocks, the hub
container's declared environment and uploaded secret files (with their declared modes) are put
in place, and the real jupyterhub_config.py loads them. Only container-local paths (/run/secrets,
/homes, /shared) are mapped into a temporary directory. What the hub then does with its config
(who may log in, where its state lives, whether idle servers are stopped) is checked on the
real JupyterHub, authenticator and culler classes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config, PyFileConfigLoader

from harness import Run, run_program

HUB_DIR = Path(__file__).resolve().parents[1] / "services" / "hub"
SERVICE = {
    "users": [{"name": "alice", "groups": ["physics"]}, {"name": "bob"}],
    "groups": [{"name": "physics"}], "allowedGroups": ["physics"],
}


@pytest.fixture(scope="module")
def ldap_run() -> Run:
    return run_program("dev", overrides=SERVICE)


@pytest.fixture(scope="module")
def github_run() -> Run:
    return run_program("aws", overrides={
        **SERVICE, "allowedGroups": [], "auth": "github", "githubClientId": "Iv1.abc",
        "githubClientSecret": "gh-oauth-secret-value", "githubAllowedOrgs": ["my-lab"]},
        secret_keys=("githubClientSecret",))


def hub_container(run: Run) -> dict[str, Any]:
    (hub,) = [r.plain for r in run.of_type("docker:index/container:Container")
              if r.plain["name"].endswith("-hub")]
    return hub


def deployed_config(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Load jupyterhub_config.py with the deployed settings document and secret files."""
    import json

    from services.hub.jhc_settings import SETTINGS_FILE, SETTINGS_FILE_VAR
    hub = hub_container(run)
    secrets = tmp_path / "run-secrets"
    secrets.mkdir()
    document: dict[str, str] = {}
    for upload in hub["uploads"]:
        if upload["file"] == SETTINGS_FILE:
            document = json.loads(upload["content"])
            continue
        assert upload["file"].startswith("/run/secrets/"), upload["file"]
        path = secrets / upload["file"].removeprefix("/run/secrets/")
        path.write_text(upload["content"])
        path.chmod(int(upload["permissions"], 8))  # the mode the container gets
    assert document, "the hub gets its settings document"
    for key, value in document.items():
        if value.startswith("/run/secrets/"):
            document[key] = str(secrets / value.removeprefix("/run/secrets/"))
    for key in ("JHC_HOMES_HUB_DIR", "JHC_SHARED_HUB_DIR"):
        (tmp_path / key).mkdir()
        document[key] = str(tmp_path / key)
    settings_file = tmp_path / "jhc-settings.json"
    settings_file.write_text(json.dumps(document))
    for key in list(os.environ):
        if key.startswith("JHC_"):
            monkeypatch.delenv(key)
    for entry in hub.get("envs", []):
        key, value = entry.split("=", 1)
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(SETTINGS_FILE_VAR, str(settings_file))
    sys.path.insert(0, str(HUB_DIR))
    try:
        return PyFileConfigLoader("jupyterhub_config.py", path=str(HUB_DIR)).load_config()
    finally:
        sys.path.remove(str(HUB_DIR))


def test_only_allowed_groups_may_log_in(ldap_run, tmp_path, monkeypatch) -> None:
    import asyncio

    cfg = deployed_config(ldap_run, tmp_path, monkeypatch)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    assert auth.allow_all is False
    member = {"auth_state": {"ldap_groups": ["cn=physics,ou=groups,dc=jupyterhub,dc=internal"]}}
    outsider = {"auth_state": {"ldap_groups": ["cn=other,ou=groups,dc=jupyterhub,dc=internal"]}}
    assert asyncio.run(auth.check_allowed("alice", member)) is True
    assert asyncio.run(auth.check_allowed("bob", outsider)) is False


def test_state_lives_in_postgres_not_in_the_container(ldap_run, tmp_path, monkeypatch) -> None:
    import sqlalchemy
    from jupyterhub.app import JupyterHub

    cfg = deployed_config(ldap_run, tmp_path, monkeypatch)
    url = sqlalchemy.engine.make_url(JupyterHub(config=cfg).db_url)
    assert (url.get_backend_name(), url.host) == ("postgresql", "postgres")
    assert url.password  # the deployed password file was read


def test_idle_servers_are_culled(ldap_run, tmp_path, monkeypatch) -> None:
    from jupyterhub.app import JupyterHub

    cfg = deployed_config(ldap_run, tmp_path, monkeypatch)
    (culler,) = [s for s in JupyterHub(config=cfg).services if s["name"] == "idle-culler"]
    timeout = [a for a in culler["command"] if a.startswith("--timeout=")]
    assert timeout == ["--timeout=3600"]  # the key table's default for cullIdleTimeout


def test_culler_follows_the_stack_setting(tmp_path, monkeypatch) -> None:
    run = run_program("dev", overrides={**SERVICE, "cullIdleTimeout": 7200})
    cfg = deployed_config(run, tmp_path, monkeypatch)
    (culler,) = [s for s in cfg.JupyterHub.services if s["name"] == "idle-culler"]
    assert "--timeout=7200" in culler["command"]


def test_github_hub_reads_its_client_secret_file(github_run, tmp_path, monkeypatch) -> None:
    cfg = deployed_config(github_run, tmp_path, monkeypatch)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    assert auth.client_secret == "gh-oauth-secret-value"
    assert auth.allowed_organizations == {"my-lab"}
