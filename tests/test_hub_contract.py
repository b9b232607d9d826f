"""The hub contract: what the stack loader accepts, the hub accepts, and means the same there.

Edge values go through the whole path: stack config -> components.config.load_settings ->
components.platform.hub.checked_hub_environment (the hub's validation, run by the program) -> the real
services/hub/jupyterhub_config.py executed by traitlets, as the hub does at start. Either both
ends accept a value and agree on what it means, or the loader refuses it naming the config key.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config, PyFileConfigLoader

from components.config import ConfigError, load_settings
from components.platform.hub import HEALTHCHECK, HUB_PORT, checked_hub_environment, hub_environment
from services.ldap.desired import DesiredStateError, validate_name
from tests.harness import run_program

ROOT = Path(__file__).resolve().parents[1]
HUB_DIR = ROOT / "services" / "hub"
sys.path.insert(0, str(HUB_DIR))

from jhc_settings import SETTINGS_FILE_VAR, settings_document  # noqa: E402
from jhc_values import ACCOUNT_RE, RESERVED_LOGINS, validate_account, validate_login  # noqa: E402

SECRET_KEYS = frozenset({"users", "githubClientSecret"})
MENU_IMAGE = "sha256:" + "ab" * 32


def _raw(config: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def _secret(path: Path, value: str) -> str:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


class Hub:
    """Runs the real jupyterhub_config.py with the variables the program would set."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp_path
        self.monkeypatch = monkeypatch
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        # /run/secrets/* exist only inside the container: mode-600 files stand in for them
        self.files = {
            "/run/secrets/cookie-secret": _secret(secrets / "cookie", "a1" * 32),
            "/run/secrets/crypt-key": _secret(secrets / "crypt", "0f" * 32),
            "/run/secrets/proxy-token": _secret(secrets / "proxy", "proxy-token"),
            "/run/secrets/db-password": _secret(secrets / "db", "db-password"),
            "/run/secrets/github-client-secret": _secret(secrets / "gh", "gh-secret"),
            "/run/secrets/ldap-readonly-password": _secret(secrets / "ro", "ro-password"),
        }

    def load(self, env: dict[str, str]) -> Config:
        for key in list(os.environ):
            if key.startswith("JHC_"):
                self.monkeypatch.delenv(key)
        # the settings document the component uploads, with the stand-in secret files
        document = self.tmp / "jhc-settings.json"
        document.write_text(settings_document({k: self.files.get(v, v) for k, v in env.items()}))
        self.monkeypatch.setenv(SETTINGS_FILE_VAR, str(document))
        return PyFileConfigLoader("jupyterhub_config.py", path=str(HUB_DIR)).load_config()


class User:
    """Just enough of jupyterhub.user.User for a DockerSpawner to read its limits."""

    name, id, admin, server, orm_user, groups, url = "dave", 1, False, None, None, [], "/user/dave/"


def spawner(config: Config) -> Any:
    from dockerspawner import DockerSpawner

    return DockerSpawner(config=config, user=User())


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    return Hub(tmp_path, monkeypatch)


def through(hub: Hub, config: dict[str, Any]) -> Config | ConfigError:
    """The whole path for one stack config: the loader's refusal, or the hub's traitlets."""
    # the loader wraps secrets in pulumi Outputs, which need a loop (other tests close theirs)
    asyncio.set_event_loop(asyncio.new_event_loop())
    try:
        settings = load_settings(_raw(config), "t", SECRET_KEYS)
    except ConfigError as err:
        return err
    service = settings.service
    menu = [{"name": i.name, "display_name": i.display_name, "image": MENU_IMAGE,
             "groups": list(i.groups)} for i in service.images]
    env = checked_hub_environment(service, settings.host.data_dir, "jhc-t-frontend",
                                  "https://hub.example.org", menu)
    return hub.load(env)


LDAP_USERS = [{"name": "alice", "groups": ["physics"]}, {"name": "bob"}]
LDAP = {"users": LDAP_USERS, "groups": [{"name": "physics"}]}

#: (login as written, the normalised login the hub must see, or None: the loader must refuse)
LOGINS = [
    ("dave", "dave"),
    ("Dave", "dave"),
    (" dave ", "dave"),
    ("a" * 32, "a" * 32),
    ("a" * 33, None),  # longer than useradd allows
    ("a" * 38, None),  # a GitHub login the hub refused while the loader accepted it
    ("123", None),  # all digits: useradd would read it as a uid
    ("0", None),
    ("1a", "1a"),
    ("a.b", "a.b"),
    ("_x", "_x"),
    (".x", None),
    ("-x", None),
    ("a/b", None),
    ("a b", None),
    ("é", None),
    ("root", None),
    ("jovyan", None),
    ("admin", None),  # a system account inside the notebook images
    ("", None),
]


@pytest.mark.parametrize(("written", "normalised"), LOGINS)
@pytest.mark.parametrize("key", ["adminUsers", "allowedUsers", "blockedUsers"])
def test_login_lists_agree_end_to_end(hub: Hub, key: str, written: str,
                                      normalised: str | None) -> None:
    result = through(hub, {**LDAP, key: [written]})
    if normalised is None:
        assert isinstance(result, ConfigError), f"{written!r} reached the hub"
        assert result.key == key and f"'jupyterhub-cloud:{key}'" in str(result)
        return
    assert isinstance(result, Config), str(result)
    traitlet = {"adminUsers": "admin_users", "allowedUsers": "allowed_users",
                "blockedUsers": "blocked_users"}[key]
    assert normalised in result.Authenticator[traitlet]
    if key == "allowedUsers":
        assert result.Authenticator.allow_all is False
    # the hub's own login check agrees with the loader's (the authenticator instance)
    auth = result.JupyterHub.authenticator_class(config=result)
    assert auth.validate_username(normalised)


@pytest.mark.parametrize(("name", "accepted"), [
    ("carol", True), ("c" * 32, True), ("c" * 33, False), ("1carol", False), ("c.d", False),
    ("Carol", False), ("123", False), ("docker", False), ("c_d-e", True), ("carol\n", False)])
def test_declared_users_agree_end_to_end(hub: Hub, name: str, accepted: bool) -> None:
    """A declared (LDAP) user who is an admin reaches the hub as an admin login."""
    result = through(hub, {**LDAP, "users": [*LDAP_USERS, {"name": name, "admin": True}]})
    if not accepted:
        assert isinstance(result, ConfigError) and result.key.startswith("users["), result
        return
    assert isinstance(result, Config), str(result)
    assert name in result.Authenticator.admin_users


#: (memLimit, bytes the spawner must end up with, or None: the loader must refuse)
MEMORY = [
    ("2G", 2 * 1024**3),
    ("1.5G", 1610612736),  # the loader accepted it and the hub refused it
    ("512M", 512 * 1024**2),
    ("6M", 6 * 1024**2),
    ("5M", None),  # below Docker's minimum
    ("0", None),  # no limit: the hub reads it, a stack may not ask for it
    ("2g", None),
    ("2GB", None),
    ("lots", None),
    ("-1G", None),
    ("1.5", None),  # 1.5 bytes
    ("1073741824", None),  # bare bytes: the old hub accepted them, DockerSpawner refuses them
    ("0.0001K", None),  # rounds to 0 bytes
]


@pytest.mark.parametrize(("written", "expected"), MEMORY)
def test_memory_limit_agrees_end_to_end(hub: Hub, written: str, expected: int | None) -> None:
    result = through(hub, {**LDAP, "memLimit": written})
    if expected is None:
        assert isinstance(result, ConfigError) and result.key == "memLimit", result
        return
    assert isinstance(result, Config), str(result)
    # JupyterHub's own ByteSpecification parses the hub's value into what Docker receives
    assert spawner(result).mem_limit == expected


#: (cpuLimit, cores the spawner must end up with, or None: the loader must refuse)
CPUS = [
    ("1", 1.0), ("1.5", 1.5), ("0.01", 0.01), ("0.5", 0.5), ("1024", 1024.0), ("2.25", 2.25),
    ("0", None), ("0.001", None), ("1025", None), ("1e3", None), (".5", None), ("two", None),
    ("-1", None), ("1.505", None), ("", None),
]


@pytest.mark.parametrize(("written", "expected"), CPUS)
def test_cpu_limit_agrees_end_to_end(hub: Hub, written: str, expected: float | None) -> None:
    result = through(hub, {**LDAP, "cpuLimit": written})
    if expected is None:
        assert isinstance(result, ConfigError) and result.key == "cpuLimit", result
        return
    assert isinstance(result, Config), str(result)
    assert spawner(result).cpu_limit == expected


def test_allowed_groups_reach_the_authenticator(hub: Hub) -> None:
    result = through(hub, {**LDAP, "allowedGroups": ["physics"]})
    assert isinstance(result, Config), str(result)
    from ldapauthenticator import LDAPAuthenticator

    auth = LDAPAuthenticator(config=result)
    assert auth.allowed_groups == ["cn=physics,ou=groups,dc=jupyterhub,dc=internal"]
    assert result.Authenticator.allow_all is False
    # without the rule every account may log in
    open_hub = through(hub, LDAP)
    assert isinstance(open_hub, Config) and open_hub.Authenticator.allow_all is True


def test_github_logins_agree_end_to_end(hub: Hub) -> None:
    github = {**LDAP, "auth": "github", "githubClientId": "Iv1.abc",
              "githubClientSecret": "gh-secret", "githubAllowedOrgs": ["my-lab"]}
    result = through(hub, {**github, "adminUsers": ["Octo-Cat"]})
    assert isinstance(result, Config), str(result)
    assert result.Authenticator.admin_users == {"octo-cat"}
    too_long = through(hub, {**github, "adminUsers": ["o" * 39]})  # GitHub allows 39
    assert isinstance(too_long, ConfigError) and too_long.key == "adminUsers"


# --------------------------------------------------------------------------------------------
# values the loader lets through but the hub refuses fail the preview, naming the key


@pytest.mark.parametrize(("config", "key"), [
    ({"images": [{"name": "minimal", "displayName": " ", "path": "minimal"}]}, "images"),
    ({"datasets": [{"name": "census", "path": "/data/census:rw"}]}, "datasets"),
])
def test_the_program_refuses_what_the_hub_would_refuse(config: dict[str, Any], key: str) -> None:
    load_settings(_raw({**LDAP, **config}), "t", SECRET_KEYS)  # the loader alone lets it pass
    with pytest.raises(ConfigError) as err:
        run_program("local", overrides={**LDAP, **config}, secret_keys=("users",), preview=True)
    assert err.value.key == key
    assert str(err.value).startswith(f"config key 'jupyterhub-cloud:{key}': the hub would refuse")


def test_a_variable_no_key_feeds_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    import components.platform.hub as hub_module

    settings = load_settings(_raw(LDAP), "t", SECRET_KEYS)
    original = hub_module.hub_environment

    def broken(*args: Any) -> dict[str, str]:
        return {**original(*args), "JHC_HUB_CONNECT_HOST": "not a host"}

    monkeypatch.setattr(hub_module, "hub_environment", broken)
    with pytest.raises(pulumi.RunError, match="JHC_HUB_CONNECT_HOST.*a bug"):
        hub_module.checked_hub_environment(settings.service, "/srv/jupyterhub", "f",
                                           "https://x.example", [])


# --------------------------------------------------------------------------------------------
# one definition of a login name


ACCOUNT_EDGES = ["a", "a" * 32, "a" * 33, "1a", "a.b", "_a", "a-b", "a_b", "A", "123", "root",
                 "jovyan", "nobody", "", "a b", "a/b", "ab\n"]


@pytest.mark.parametrize("name", ACCOUNT_EDGES)
def test_every_account_name_is_a_login_and_ldap_agrees(name: str) -> None:
    """The LDAP side (services/ldap/desired.py, in the slapd image, which cannot import
    jhc_values) accepts exactly the account pattern of jhc_values, and every account name is a
    login the hub accepts (reserved ones are refused by the loader before LDAP sees them)."""
    account = ACCOUNT_RE.fullmatch(name) is not None
    if name in RESERVED_LOGINS:
        with pytest.raises(ValueError, match="reserved"):
            validate_account(name)
        with pytest.raises(ConfigError, match="reserved"):
            load_settings(_raw({"users": [{"name": name}]}), "t", SECRET_KEYS)
    try:
        validate_name(name, "user")
        ldap = True
    except DesiredStateError:
        ldap = False
    assert ldap == account
    if account and name not in RESERVED_LOGINS:
        assert validate_account(name) == validate_login(name) == name
        assert load_settings(_raw({"users": [{"name": name}]}), "t", SECRET_KEYS)


# --------------------------------------------------------------------------------------------
# a hub that cannot start fails `pulumi up`


def test_hub_container_waits_for_a_healthy_hub() -> None:
    run = run_program("local", overrides=LDAP, secret_keys=("users",))
    hub_container = next(r for r in run.of_type("docker:index/container:Container")
                         if r.plain.get("name") == "jhc-local-hub")
    inputs = hub_container.plain
    assert inputs["wait"] is True
    assert inputs["waitTimeout"] >= 120  # a first start upgrades the database
    check = inputs["healthcheck"]
    assert check["tests"] == HEALTHCHECK
    assert f"127.0.0.1:{HUB_PORT}/hub/health" in " ".join(check["tests"])
    # the port probed is the one the hub is told to bind
    settings = load_settings(_raw(LDAP), "t", SECRET_KEYS)
    env = hub_environment(settings.service, "/srv/jupyterhub", "f", "https://x.example", [])
    assert f"127.0.0.1:{env['JHC_HUB_PORT']}/hub/health" in " ".join(check["tests"])


# --------------------------------------------------------------------------------------------
# one settings document, the hub's only source of settings


def test_the_hub_gets_one_settings_document_and_no_variables() -> None:
    from jhc_settings import SETTINGS_FILE

    run = run_program("local", overrides=LDAP, secret_keys=("users",))
    hub_container = next(r for r in run.of_type("docker:index/container:Container")
                         if r.plain.get("name") == "jhc-local-hub")
    assert not [e for e in hub_container.plain.get("envs") or [] if e.startswith("JHC_")]
    [upload] = [u for u in hub_container.plain["uploads"] if u["file"] == SETTINGS_FILE]
    document = json.loads(upload["content"])
    assert document["JHC_AUTH"] == "ldap" and document["JHC_LDAP_BASE_DN"]
    assert document["JHC_MEM_LIMIT"] == "2G"
    assert SETTINGS_FILE.startswith("/etc/jupyterhub/")  # where the image's config lives


def test_the_document_is_the_only_source(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    from jhc_variables import HubConfigError

    settings = load_settings(_raw(LDAP), "t", SECRET_KEYS)
    env = hub_environment(settings.service, "/srv/jupyterhub", "f", "https://x.example",
                          [{"name": "nb", "image": MENU_IMAGE}])
    assert isinstance(hub.load(env), Config)
    # a variable left in the environment would be ignored: refused instead
    monkeypatch.setenv("JHC_MEM_LIMIT", "4G")
    with pytest.raises(HubConfigError, match="JHC_MEM_LIMIT: is set in the environment"):
        PyFileConfigLoader("jupyterhub_config.py", path=str(HUB_DIR)).load_config()
    monkeypatch.delenv("JHC_MEM_LIMIT")
    document = hub.tmp / "bad.json"
    monkeypatch.setenv(SETTINGS_FILE_VAR, str(document))
    for content, problem in [("[]", "JSON object"), ('{"JHC_MEM_LIMIT": 4}', "string"),
                             ('{"JHC_NOPE": "x"}', "not a variable"), ("{", "not JSON")]:
        document.write_text(content)
        with pytest.raises(HubConfigError, match=problem):
            PyFileConfigLoader("jupyterhub_config.py", path=str(HUB_DIR)).load_config()
    document.unlink()
    with pytest.raises(HubConfigError, match="JHC_SETTINGS_FILE: cannot read"):
        PyFileConfigLoader("jupyterhub_config.py", path=str(HUB_DIR)).load_config()
