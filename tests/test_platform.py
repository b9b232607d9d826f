"""The service layer under Pulumi mocks: networks, secrets, images, LDAP input, host isolation."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import pytest
from pulumi.runtime.rpc import is_rpc_secret

from components.config.accounts import UID_BASE, derived_id
from harness import Declared, Run, container_env, plain, run_program
from services.hub.jhc_settings import SETTINGS_FILE

USERS = [
    {"name": "alice", "fullName": "Alice Liddell", "email": "alice@example.org",
     "groups": ["physics"], "admin": True},
    {"name": "bob", "groups": ["physics", "teaching"], "password": "correct-horse-battery"},
    {"name": "carol", "uid": 4242},
]
GROUPS = [{"name": "physics"}, {"name": "teaching", "gid": 5000}]
SERVICE = {
    "users": USERS, "groups": GROUPS, "blockedUsers": ["mallory"],
    "images": [{"name": "minimal", "displayName": "Minimal", "path": "minimal"},
               {"name": "scipy", "displayName": "SciPy", "path": "scipy", "groups": ["physics"]}],
    "datasets": [{"name": "survey"}], "memLimit": "4G", "cpuLimit": "2",
}
CONFIGURED_SECRETS = ["correct-horse-battery", "gh-oauth-secret-value"]


def service_run(stack: str, **extra: Any) -> Run:
    return run_program(stack, overrides={**SERVICE, **extra}, secret_keys=("users",))


@pytest.fixture(scope="module")
def dev() -> Run:
    return service_run("dev")


@pytest.fixture(scope="module")
def github() -> Run:
    return run_program("aws", overrides={
        **SERVICE, "auth": "github", "githubClientId": "Iv1.abc",
        "githubClientSecret": "gh-oauth-secret-value", "githubAllowedOrgs": ["my-lab"]},
        secret_keys=("users", "githubClientSecret"))


def containers(run: Run) -> dict[str, Declared]:
    return {r.plain["name"]: r for r in run.of_type("docker:index/container:Container")}


def networks_of(container: Declared) -> set[str]:
    return {n["name"] for n in container.plain.get("networksAdvanced", [])}


def test_networks_keep_databases_off_the_user_network(dev: Run) -> None:
    nets = {r.plain["name"]: r.plain for r in dev.of_type("docker:index/network:Network")}
    assert nets["jhc-dev-backend"]["internal"] is True
    assert not nets["jhc-dev-frontend"].get("internal")
    c = containers(dev)
    assert networks_of(c["jhc-dev-postgres"]) == {"jhc-dev-backend"}
    assert networks_of(c["jhc-dev-ldap"]) == {"jhc-dev-backend"}
    assert networks_of(c["jhc-dev-ldap-reconcile"]) == {"jhc-dev-backend"}
    assert networks_of(c["jhc-dev-hub"]) == {"jhc-dev-backend", "jhc-dev-frontend"}
    assert networks_of(c["jhc-dev-proxy"]) == {"jhc-dev-frontend"}
    assert networks_of(c["jhc-dev-caddy"]) == {"jhc-dev-frontend"}
    hub_env = env(c["jhc-dev-hub"])
    assert hub_env["JHC_NETWORK"] == "jhc-dev-frontend"


def test_only_caddy_publishes_and_only_80_443(dev: Run) -> None:
    published = {name: c.plain.get("ports") for name, c in containers(dev).items()
                 if c.plain.get("ports")}
    assert list(published) == ["jhc-dev-caddy"]
    assert {(p["internal"], p["external"]) for p in published["jhc-dev-caddy"]} == {(80, 80),
                                                                                     (443, 443)}


def test_local_stack_publishes_on_loopback_only() -> None:
    run = run_program("local")
    ports = containers(run)["jhc-local-caddy"].plain["ports"]
    assert {(p["external"], p["ip"]) for p in ports} == {(8080, "127.0.0.1"), (8443, "127.0.0.1")}
    assert run.outputs["url"] == "https://localhost:8443"


def test_state_is_bind_mounted_from_the_data_volume(dev: Run) -> None:
    assert not dev.of_type("docker:index/volume:Volume")
    for name, c in containers(dev).items():
        for volume in c.plain.get("volumes", []):
            assert volume.get("hostPath"), (name, volume)
            assert volume["hostPath"].startswith("/srv/jupyterhub/") or \
                volume["hostPath"] == "/var/run/docker.sock", (name, volume)
    sock = [n for n, c in containers(dev).items()
            if any(v["hostPath"] == "/var/run/docker.sock" for v in c.plain.get("volumes", []))]
    assert sock == ["jhc-dev-hub"]


env = container_env


def secret_values(run: Run) -> list[str]:
    """What the mocks generated (see harness.RecordingMocks) plus the configured secrets."""
    generated = [f"generated-{r.name}-Zq8"
                 for r in run.of_type("random:index/randomPassword:RandomPassword")]
    generated += [hashlib.sha256(r.name.encode()).hexdigest()
                  for r in run.of_type("random:index/randomBytes:RandomBytes")]
    return generated + CONFIGURED_SECRETS


def contains(value: Any, needle: str) -> bool:
    return needle in json.dumps(plain(value), default=str)


@pytest.mark.parametrize(("fixture", "in_use"), [("dev", 8), ("github", 5)])
def test_secrets_stay_secret(fixture: str, in_use: int, request) -> None:
    run: Run = request.getfixturevalue(fixture)
    secrets = [s for s in secret_values(run) if any(contains(r.inputs, s) for r in run)]
    # Generated ones plus the configured ones in use (github: no LDAP, so no LDAP passwords).
    assert len(secrets) >= in_use, secrets
    for r in run:
        for key, value in r.inputs.items():
            for s in secrets:
                if contains(value, s):
                    assert is_rpc_secret(value) or _all_secret(value, s), (r.name, key)
    # never in image builds, labels, the hub's environment, or the host's user_data
    for r in run:
        places = []
        if r.type == "docker:index/image:Image":
            places.append(r.inputs)
        places.append(r.inputs.get("labels"))
        if r.type == "docker:index/container:Container" and r.plain.get("name", "").endswith("-hub"):
            places.append(r.inputs.get("envs"))
            places += [u for u in r.plain["uploads"] if u["file"] == SETTINGS_FILE]
        if r.type in ("openstack:compute/instance:Instance", "aws:ec2/instance:Instance"):
            places.append(r.inputs.get("userData"))
        for place in places:
            for s in secrets:
                assert not contains(place, s), (r.name, s)


def _all_secret(value: Any, needle: str) -> bool:
    """Every part of `value` that contains the needle is wrapped as a secret."""
    if is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return all(_all_secret(v, needle) for v in value.values() if contains(v, needle))
    if isinstance(value, list):
        return all(_all_secret(v, needle) for v in value if contains(v, needle))
    return needle not in str(value)


def test_initial_passwords_are_a_secret_output(dev: Run) -> None:
    assert "initialPasswords" in dev.secret_outputs
    # generated for users without a configured password only
    assert set(dev.outputs["initialPasswords"]) == {"alice", "carol"}
    assert dev.outputs["adminUsers"] == ["alice"]
    assert "adminUsers" not in dev.secret_outputs


def test_images_and_menu_agree(dev: Run) -> None:
    built = {r.plain["imageName"]: r.plain for r in dev.of_type("docker:index/image:Image")}
    assert built["jhc-dev-notebook-scipy:latest"]["build"]["context"] == "images/scipy"
    assert built["jhc-dev-notebook-scipy:latest"]["skipPush"] is True
    menu = json.loads(env(containers(dev)["jhc-dev-hub"])["JHC_IMAGES_JSON"])
    assert [(m["name"], m["display_name"], m["groups"]) for m in menu] == [
        ("minimal", "Minimal", []), ("scipy", "SciPy", ["physics"])]
    assert {m["image"] for m in menu} == {"sha256:" + hashlib.sha256(n.encode()).hexdigest()
                                          for n in ("jhc-images-minimal", "jhc-images-scipy")}
    assert "jhc-dev-notebook-r:latest" not in built


def test_ldap_reconcile_input_matches_declared_users(dev: Run) -> None:
    reconcile = containers(dev)["jhc-dev-ldap-reconcile"]
    assert reconcile.plain["attach"] is True and reconcile.plain["mustRun"] is False
    uploads = {u["file"]: u for u in reconcile.plain["uploads"]}
    desired = json.loads(uploads["/run/secrets/ldap-desired.json"]["content"])
    assert uploads["/run/secrets/ldap-desired.json"]["permissions"] == "0600"
    users = {u["name"]: u for u in desired["users"]}
    assert set(users) == {"alice", "bob", "carol"}
    assert users["carol"]["uid"] == 4242
    assert users["alice"]["uid"] == derived_id("alice", UID_BASE)
    assert users["alice"]["cn"] == "Alice Liddell" and users["alice"]["mail"] == "alice@example.org"
    assert users["bob"]["password"] == "correct-horse-battery"
    assert users["alice"]["password"] == "generated-jhc-secrets-user-alice-Zq8"
    assert {u["gid"] for u in users.values()} == {100}
    groups = {g["name"]: g for g in desired["groups"]}
    assert groups["physics"]["members"] == ["alice", "bob"]
    assert groups["teaching"] == {"name": "teaching", "gid": 5000, "members": ["bob"]}
    assert desired["base_dn"] == "dc=jupyterhub,dc=internal"


def test_hub_environment_from_settings(dev: Run) -> None:
    hub = env(containers(dev)["jhc-dev-hub"])
    assert hub["JHC_AUTH"] == "ldap" and hub["JHC_ADMIN_USERS"] == "alice"
    assert hub["JHC_BLOCKED_USERS"] == "mallory"
    assert hub["JHC_PUBLIC_URL"] == "https://198.51.100.10"
    assert hub["JHC_MEM_LIMIT"] == "4G" and hub["JHC_CPU_LIMIT"] == "2"
    assert json.loads(hub["JHC_DATASETS_JSON"]) == [
        {"name": "survey", "host_path": "/srv/jupyterhub/datasets/survey"}]
    assert hub["JHC_HOMES_HOST_DIR"] == "/srv/jupyterhub/homes"
    for key, value in hub.items():
        assert not key.endswith(("_SECRET", "_PASSWORD", "_TOKEN")), key
        if key.endswith("_FILE"):
            assert value.startswith("/run/secrets/")


def test_github_hub_gets_uids_and_secret_file(github: Run) -> None:
    hub_container = containers(github)["jhc-aws-hub"]
    hub = env(hub_container)
    assert hub["JHC_AUTH"] == "github" and hub["JHC_GITHUB_ALLOWED_ORGS"] == "my-lab"
    assert json.loads(hub["JHC_UIDS_JSON"])["carol"] == 4242
    files = {u["file"] for u in hub_container.plain["uploads"]}
    assert "/run/secrets/github-client-secret" in files


def test_proxy_and_caddy(dev: Run) -> None:
    c = containers(dev)
    proxy = c["jhc-dev-proxy"]
    assert is_rpc_secret(proxy.inputs["envs"]) or is_rpc_secret(proxy.inputs["envs"][0])
    assert "--default-target=http://jupyterhub:8081" in proxy.plain["command"]
    caddyfile = c["jhc-dev-caddy"].plain["uploads"][0]["content"]
    assert "198.51.100.10 {" in caddyfile and "tls internal" in caddyfile
    acme = service_run("dev", domain="hub.example.org", acmeEmail="ops@example.org")
    caddyfile = containers(acme)["jhc-dev-caddy"].plain["uploads"][0]["content"]
    assert "hub.example.org {" in caddyfile and "tls internal" not in caddyfile
    assert "email ops@example.org" in caddyfile
    assert acme.outputs["url"] == "https://hub.example.org"


def instance_inputs(run: Run) -> dict:
    for typ in ("openstack:compute/instance:Instance", "aws:ec2/instance:Instance"):
        if run.of_type(typ):
            return run.one(typ).plain
    raise AssertionError


CHANGED_SERVICE = {
    "domain": "hub.example.org", "acmeEmail": "ops@example.org", "acmeStaging": True,
    "ldapBaseDn": "dc=physics,dc=example,dc=org", "ldapOrganisation": "Physics",
    "users": [{"name": "dave", "groups": ["x"]}], "groups": [{"name": "x"}],
    "adminUsers": ["erin"], "allowedUsers": ["dave"], "allowedGroups": ["x"],
    "blockedUsers": ["frank"], "images": [{"name": "r", "path": "r"}],
    "datasets": [{"name": "d", "path": "/data/d"}], "memLimit": "8G", "cpuLimit": "4",
    "cullIdleTimeout": 0,
}


@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_service_settings_never_touch_the_vm(stack: str) -> None:
    from components.config.keys import KEYS
    service_keys = {k.name for k in KEYS if k.layer == "service"}
    assert set(CHANGED_SERVICE) | {"auth", "githubClientId", "githubClientSecret",
                                   "githubAllowedOrgs"} == service_keys
    base = run_program(stack)
    changed = run_program(stack, overrides=CHANGED_SERVICE)
    assert instance_inputs(changed) == instance_inputs(base)
    assert instance_inputs(changed)["userData"] == instance_inputs(base)["userData"]
    github = run_program(stack, overrides={
        "auth": "github", "githubClientId": "x", "githubClientSecret": "y",
        "githubAllowedOrgs": ["o"]}, secret_keys=("githubClientSecret",))
    assert instance_inputs(github) == instance_inputs(base)
    host_types = [r for r in base if r.type.startswith(("openstack:", "aws:"))]
    for r in host_types:
        assert changed.resources[r.name].plain == r.plain, r.name


def test_caddyfile_is_valid_for_caddy(tmp_path) -> None:
    from components.platform.templates import render_caddyfile
    for args in (("198.51.100.10", None, False), ("hub.example.org", "a@example.org", True),
                 ("localhost", None, False)):
        path = tmp_path / "Caddyfile"
        path.write_text(render_caddyfile(*args))
        result = subprocess.run(["caddy", "adapt", "--config", str(path), "--adapter", "caddyfile"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        adapted = json.loads(result.stdout)
        assert adapted["apps"]["http"]["servers"], args


def test_ldap_hub_gets_only_the_read_only_directory_password(dev: Run, github: Run) -> None:
    # the revocation check reads accounts as cn=readonly; the hub holds no write credential
    c = containers(dev)
    hub = {u["file"]: u for u in c["jhc-dev-hub"].plain["uploads"]}
    ldap = {u["file"]: u for u in c["jhc-dev-ldap"].plain["uploads"]}
    readonly = "/run/secrets/ldap-readonly-password"
    assert env(c["jhc-dev-hub"])["JHC_LDAP_READONLY_PASSWORD_FILE"] == readonly
    assert hub[readonly]["permissions"] == "0600"
    assert hub[readonly]["content"] == ldap[readonly]["content"]
    assert "/run/secrets/ldap-admin-password" in ldap
    assert not [f for f in hub if "admin" in f]
    github_files = {u["file"] for u in containers(github)["jhc-aws-hub"].plain["uploads"]}
    assert readonly not in github_files
