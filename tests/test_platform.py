"""The service layer under Pulumi mocks: networks, secrets, images, LDAP input, host isolation."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Any

import pulumi
import pytest
from pulumi.runtime.rpc import is_rpc_secret

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
                volume["hostPath"] == "/var/run/docker.sock" or \
                (name, volume["hostPath"]) == ("jhc-dev-backup", "/srv/jupyterhub"), (name, volume)
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
    generated += plain(run.outputs["initialPasswords"]).values()  # derived from a key
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
    reconcile = dev.resources["jhc-ldap-reconcile"]
    assert reconcile.type == "command:local:Command"
    assert is_rpc_secret(reconcile.inputs["stdin"])  # the document holds passwords
    assert reconcile.plain["environment"]["JHC_LDAP_CONTAINER"] == "jhc-dev-ldap"
    desired = json.loads(reconcile.plain["stdin"])
    users = {u["name"]: u for u in desired["users"]}
    assert set(users) == {"alice", "bob", "carol"}
    assert users["carol"]["uid"] == 4242
    assert "uid" not in users["alice"]  # assigned by the reconcile, remembered in LDAP
    assert users["alice"]["cn"] == "Alice Liddell" and users["alice"]["mail"] == "alice@example.org"
    assert users["bob"]["password"] == "correct-horse-battery"
    generated = plain(dev.outputs["initialPasswords"])
    assert users["alice"]["password"] == generated["alice"]
    assert users["carol"]["password"] == generated["carol"]
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
    token = "generated-jhc-secrets-proxy-token-Zq8"
    assert contains(proxy.inputs["envs"], token)
    # every part holding the token is secret (not merely some sibling entry of the list)
    assert _all_secret(proxy.inputs["envs"], token), "the proxy token is in plain text"
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
    "backupTime": "04:15", "backupKeepDaily": 3, "backupKeepWeekly": 1, "backupKeepMonthly": 0,
    "backupCheckEveryDays": 0, "backupCheckReadDataPercent": 50,
}
# GitHub logins, with a previous hub crypt key being rotated out
GITHUB = {"auth": "github", "githubClientId": "x", "githubClientSecret": "y",
          "githubAllowedOrgs": ["o"], "hubPreviousCryptKeys": "0f" * 32}
GITHUB_SECRETS = ("githubClientSecret", "hubPreviousCryptKeys")
# Where backups go changes cloud resources (bucket, credentials), never the VM or its volume.
BACKUP_TARGET_KEYS = {"backupEnabled", "backupRepository", "backupRepositoryEnv"}
HOST_DATA_TYPES = (
    "openstack:compute/instance:Instance", "openstack:blockstorage/volume:Volume",
    "openstack:compute/volumeAttach:VolumeAttach", "openstack:networking/floatingIp:FloatingIp",
    "aws:ec2/instance:Instance", "aws:ebs/volume:Volume",
    "aws:ec2/volumeAttachment:VolumeAttachment", "aws:ec2/eip:Eip",
)


@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_service_settings_never_touch_the_vm(stack: str) -> None:
    from components.config.keys import KEYS
    service_keys = {k.name for k in KEYS if k.layer == "service"}
    assert set(CHANGED_SERVICE) | {"auth", "githubClientId", "githubClientSecret",
                                   "githubAllowedOrgs", "hubPreviousCryptKeys",
                                   *BACKUP_TARGET_KEYS} == service_keys
    base = run_program(stack)
    changed = run_program(stack, overrides=CHANGED_SERVICE)
    assert instance_inputs(changed) == instance_inputs(base)
    assert instance_inputs(changed)["userData"] == instance_inputs(base)["userData"]
    github = run_program(stack, overrides=GITHUB, secret_keys=GITHUB_SECRETS)
    assert instance_inputs(github) == instance_inputs(base)
    host_types = [r for r in base if r.type.startswith(("openstack:", "aws:"))]
    for r in host_types:
        assert changed.resources[r.name].plain == r.plain, r.name


def _vm_and_volume(run: Run) -> dict[str, tuple[dict, tuple]]:
    found = {}
    for r in run:
        if r.type in HOST_DATA_TYPES:
            opts = r.opts or pulumi.ResourceOptions()
            found[r.name] = (r.plain, (opts.protect, opts.retain_on_delete, opts.ignore_changes))
    return found


@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_backup_settings_never_touch_the_vm_or_volume(stack: str) -> None:
    base = run_program(stack)
    before = _vm_and_volume(base)
    assert len(before) == 4, sorted(before)
    assert base.of_type("docker:index/container:Container")  # the backup is on by default
    # Each variant changes several settings at once (one program run each): all off; another
    # repository kind; a third kind with its credentials and every schedule changed.
    off, s3, rest = ({"backupEnabled": False},
                     {"backupRepository": "s3:https://objects.example.org/lab-backups"},
                     {"backupRepository": "rest:https://backup.example.org/lab",
                      "backupRepositoryEnv": '{"RESTIC_REST_USERNAME": "lab", '
                                             '"RESTIC_REST_PASSWORD": "pw"}',
                      "backupTime": "05:00", "backupKeepDaily": 30, "backupCheckEveryDays": 1})
    if stack == "aws":
        off |= {"awsDataSnapshotsKeep": 0}
        rest |= {"awsDataSnapshotsKeep": 30, "awsDataSnapshotTime": "01:00"}
    for change in (off, s3, rest):
        changed = run_program(stack, overrides=change, secret_keys=("backupRepositoryEnv",))
        assert _vm_and_volume(changed) == before, change


@pytest.mark.needs("caddy")
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


RANDOM_TYPES = ("random:index/randomPassword:RandomPassword", "random:index/randomBytes:RandomBytes")


def generated_secrets(run: Run) -> dict[str, Declared]:
    return {r.name: r for r in run if r.type in RANDOM_TYPES}


def test_generated_secrets_are_kept_like_the_data(dev: Run) -> None:
    """Lost generated secrets used to lock services out (issue 7, point 1): they are protected
    and retained unless allowDataLoss, the same policy as the data volume."""
    generated = generated_secrets(dev)
    roles = {n.removeprefix("jhc-secrets-") for n in generated}
    assert {"postgres", "ldap-admin", "ldap-readonly", "proxy-token", "cookie-secret",
            "crypt-key", "user-password-key", "jhc-backup-restic-password"} == roles
    for name, resource in generated.items():
        assert resource.opts.protect and resource.opts.retain_on_delete, name
    loose = generated_secrets(service_run("dev", allowDataLoss=True))
    assert set(loose) == set(generated)
    for name, resource in loose.items():
        assert not resource.opts.protect and not resource.opts.retain_on_delete, name


def passwords(users: list[dict[str, Any]], store: dict[str, str]) -> dict[str, str]:
    """initialPasswords of a run whose random values persist in `store` (as in Pulumi state)."""
    run = run_program("dev", overrides={**SERVICE, "users": users}, secret_keys=("users",),
                      secret_store=store)
    return plain(run.outputs["initialPasswords"])


def test_generated_passwords_are_stable_random_and_per_user() -> None:
    """Adding, removing or reordering users changes no one else's password; a new stack gets
    new ones; each is 20 letters and digits."""
    state: dict[str, str] = {}
    before = passwords(USERS, state)
    assert set(before) == {"alice", "carol"}  # bob has one in config
    assert passwords(USERS, state) == before
    users = [USERS[2], {"name": "dora", "groups": ["physics"]}, USERS[0]]  # bob gone, dora new
    after = passwords(users, state)
    assert {k: after[k] for k in before} == before
    assert len(set(after.values())) == 3
    for value in after.values():
        assert len(value) == 20 and value.isalnum() and value.isascii(), value
    other_stack = passwords(USERS, {})
    assert not set(other_stack.values()) & set(before.values())


def test_the_password_derivation_is_pinned() -> None:
    """Changing the derivation would change every generated password at the next `pulumi up`.
    Computed outside Python: `printf 'jupyterhub-cloud initial password\\x00alice\\x000' |
    openssl dgst -sha256 -mac HMAC -macopt hexkey:<64 zeros>`, then base-62 digits of that
    number with bc, least significant first, over a-z A-Z 0-9."""
    from components.platform.secrets import initial_password
    assert initial_password("00" * 32, "alice", 0) == "D9Wp6dQwAeIzq4Llup91"
    assert initial_password("00" * 32, "alice", 1) != "D9Wp6dQwAeIzq4Llup91"


def test_a_raised_password_generation_resets_only_that_password() -> None:
    state: dict[str, str] = {}
    before = passwords(USERS, state)
    reset = [USERS[0], USERS[1], {**USERS[2], "passwordGeneration": 1}]
    after = passwords(reset, state)
    assert after["alice"] == before["alice"] and after["carol"] != before["carol"]
    assert passwords(reset, state) == after


def test_removing_a_user_deletes_nothing_protected(dev: Run) -> None:
    """What `pulumi up` would delete when a user leaves `users` must not be protected: Pulumi
    refuses to delete a protected resource (pulumi docs, "protect")."""
    fewer = service_run("dev", users=[u for u in USERS if u["name"] != "alice"])
    gone = set(dev.resources) - set(fewer.resources)
    assert not [n for n in gone if dev.resources[n].opts and dev.resources[n].opts.protect]
    for resource in generated_secrets(dev).values():
        assert not resource.plain.get("keepers"), resource.name  # a keeper change regenerates


def test_postgres_is_the_converging_image_built_from_the_pinned_official_one(dev: Run) -> None:
    built = {r.plain["imageName"]: r for r in dev.of_type("docker:index/image:Image")}
    image = built["jhc-dev-postgres:latest"]
    assert image.plain["build"]["context"] == "services/postgres"
    assert image.plain["build"]["args"] == {"POSTGRES_IMAGE": "postgres:17-bookworm"}
    pulled = [r.plain["name"] for r in dev.of_type("docker:index/remoteImage:RemoteImage")]
    assert not any(name.startswith("postgres") for name in pulled)
    pg = containers(dev)["jhc-dev-postgres"].plain
    assert pg["image"] == "sha256:" + hashlib.sha256(b"jhc-postgres-image").hexdigest()
    assert pg["wait"] is True and pg["healthcheck"]["tests"][0] == "CMD-SHELL"


def test_hub_db_dump_runs_before_the_hub_and_follows_its_version(dev: Run) -> None:
    c = containers(dev)
    dump = c["jhc-dev-hub-db-dump"]
    hub_from = subprocess.run(["grep", "-m1", "^FROM", "services/hub/Dockerfile"],
                              capture_output=True, text=True, check=True).stdout
    version = hub_from.strip().rsplit(":", 1)[1]  # the hub image's JupyterHub tag
    assert env(dump)["JHC_HUB_VERSION"] == version
    assert dump.plain["image"] == c["jhc-dev-postgres"].plain["image"]  # pg_dump = server major
    assert dump.plain["attach"] is True and dump.plain["mustRun"] is False
    assert {"hostPath": "/srv/jupyterhub/state/hub-db-backups", "containerPath": "/backups"} \
        .items() <= dump.plain["volumes"][0].items()
    assert "/run/secrets/db-password" in {u["file"] for u in dump.plain["uploads"]}
    dump_deps = dev.resources[dump.name].opts.depends_on
    assert c["jhc-dev-postgres"].name in {getattr(d, "_name", None) for d in dump_deps}
    hub_deps = dev.resources[c["jhc-dev-hub"].name].opts.depends_on
    assert dump.name in {getattr(d, "_name", None) for d in hub_deps}


FAILING_DUMP = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
import harness
original = harness.RecordingMocks.new_resource
created = []

def failing_dump(self, args):
    created.append(args.name)
    rid, state = original(self, args)
    if args.name.endswith("hub-db-backup-dump"):
        state = {{**state, "exitCode": 3, "containerLogs": "pg_dump: error: boom"}}
    return rid, state

harness.RecordingMocks.new_resource = failing_dump
try:
    harness.run_program("dev", overrides={overrides!r}, secret_keys=("users",))
    error = None
except Exception as err:  # noqa: BLE001
    error = str(err)
print(json.dumps({{"error": error, "created": created}}))
"""


def test_failed_hub_db_dump_stops_the_deploy_before_the_hub() -> None:
    """In a child process: the aborted program leaves futures whose errors nobody reads."""
    from harness import ROOT

    script = FAILING_DUMP.format(root=str(ROOT), tests=str(ROOT / "tests"),
                                 overrides=json.loads(json.dumps(SERVICE)))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=True, cwd=ROOT)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert "dump before the JupyterHub upgrade failed" in (outcome["error"] or "")
    assert "pg_dump: error: boom" in outcome["error"]
    created = outcome["created"]
    assert "jhc-hub-db-backup-dump" in created and "jhc-postgres-container" in created
    assert "jhc-hub-container" not in created  # the hub was never created or replaced


def test_previous_crypt_keys_follow_the_generated_key(dev: Run) -> None:
    """Rotation without losing auth_state: the hub's key file is "<generated>;<previous>"
    (JupyterHub encrypts with the first, decrypts with all), as a secret upload."""
    def crypt_upload(run: Run) -> tuple[dict, Any]:
        """(the upload's plain form, the raw hub uploads input as the engine receives it)"""
        raw = run.resources[containers(run)["jhc-dev-hub"].name].inputs["uploads"]
        return next(u for u in plain(raw) if u["file"] == "/run/secrets/crypt-key"), raw

    generated = hashlib.sha256(b"jhc-secrets-crypt-key").hexdigest()  # the harness's RandomBytes
    assert crypt_upload(dev)[0]["content"] == generated
    old = GITHUB["hubPreviousCryptKeys"]
    upload, raw = crypt_upload(run_program("dev", overrides=GITHUB, secret_keys=GITHUB_SECRETS))
    assert upload["content"] == f"{generated};{old}"
    assert _all_secret(raw, old) and _all_secret(raw, generated)


def test_a_jupyterhub_version_change_changes_the_dump_step(dev: Run, tmp_path, monkeypatch) -> None:
    """A new pin in services/hub/requirements.txt gives the dump container new inputs, so Pulumi
    re-creates it (runs the dump again) before the hub; nothing else about it changes."""
    import components.platform.hub_db_backup as backup

    bumped = tmp_path / "requirements.txt"
    bumped.write_text(backup.HUB_REQUIREMENTS.read_text().replace(
        f"jupyterhub=={backup.hub_jupyterhub_version()}", "jupyterhub==9.9.9"))
    monkeypatch.setattr(backup, "HUB_REQUIREMENTS", bumped)
    after = containers(run_program("dev", overrides=SERVICE, secret_keys=("users",),
                                   fresh=True))["jhc-dev-hub-db-dump"]
    before = containers(dev)["jhc-dev-hub-db-dump"]
    assert env(after)["JHC_HUB_VERSION"] == "9.9.9"
    assert {k: v for k, v in env(after).items() if k != "JHC_HUB_VERSION"} == \
        {k: v for k, v in env(before).items() if k != "JHC_HUB_VERSION"}


# Where each upstream image keeps what must survive a container replacement. Caddy: the
# official image sets XDG_DATA_HOME=/data (certificates, ACME account: losing them means
# Let's Encrypt rate limits); postgres: PGDATA; slapd: its cn=config and its database.
STATE_PATHS = {
    "jhc-dev-caddy": ["/data"],
    "jhc-dev-postgres": ["/var/lib/postgresql/data"],
    "jhc-dev-ldap": ["/etc/ldap/slapd.d", "/var/lib/ldap"],
}


def test_every_service_state_is_on_the_data_volume(dev: Run) -> None:
    c = containers(dev)
    for name, paths in STATE_PATHS.items():
        mounts = {v["containerPath"]: v for v in c[name].plain.get("volumes", [])}
        for path in paths:
            assert path in mounts, f"{name}: {path} is not mounted (state inside the container)"
            assert mounts[path]["hostPath"].startswith("/srv/jupyterhub/state/"), mounts[path]
            assert not mounts[path].get("readOnly"), mounts[path]
    host_paths = [v["hostPath"] for n in STATE_PATHS for v in c[n].plain["volumes"]]
    assert len(host_paths) == len(set(host_paths))  # no two services share a state directory


def test_a_second_run_with_the_same_config_changes_nothing(dev: Run) -> None:
    """`pulumi up` twice with the same config must declare identical inputs: a secret made
    anew each run (keepers that change, a value generated in Python) would be replaced."""
    again = run_program("dev", overrides=SERVICE, secret_keys=("users",), fresh=True)
    assert set(again.resources) == set(dev.resources)
    for name, r in dev.resources.items():
        assert again.resources[name].plain == r.plain, name


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
