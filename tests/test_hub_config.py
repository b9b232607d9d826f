"""Tests of services/hub/jupyterhub_config.py, loaded for real like JupyterHub loads it.

The file is executed by traitlets' PyFileConfigLoader (what ``jupyterhub -f`` uses) with a
controlled environment and temporary secret files; the resulting traitlets Config is then
checked, and fed to the real classes (authenticators, DockerSpawner, JupyterHub) so a value
of the wrong type or an unknown option also fails here. The pre-spawn hook is run for real
against a temporary homes directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import stat
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config, PyFileConfigLoader

ROOT = Path(__file__).resolve().parents[1]
HUB_DIR = ROOT / "services" / "hub"
sys.path.insert(0, str(HUB_DIR))

import jhc_hub  # noqa: E402
from jhc_hub import HomeDirError, HubConfigError  # noqa: E402

IS_ROOT = os.geteuid() == 0

IMAGES = [
    {"name": "minimal", "display_name": "Minimal <Python>", "image": "jhc/minimal:1", "groups": []},
    {"name": "scipy", "display_name": "SciPy", "image": "sha256:" + "ab" * 32, "groups": []},
    {"name": "gpu", "display_name": "Physics GPU", "image": "jhc/gpu:2", "groups": ["physics"]},
]


def _secret(path: Path, value: str, mode: int = 0o600) -> str:
    path.write_text(value + "\n")
    path.chmod(mode)
    return str(path)


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """The smallest valid environment (LDAP auth, sqlite)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    homes = tmp_path / "homes"
    homes.mkdir()
    return {
        "JHC_COOKIE_SECRET_FILE": _secret(secrets / "cookie", "a1" * 32),
        "JHC_CRYPT_KEY_FILE": _secret(secrets / "crypt", "0f" * 32),
        "JHC_PROXY_AUTH_TOKEN_FILE": _secret(secrets / "proxy", "proxy-token-123"),
        "JHC_IMAGES_JSON": json.dumps(IMAGES),
        "JHC_LDAP_BASE_DN": "dc=jhc,dc=internal",
        "JHC_HOMES_HUB_DIR": str(homes),
    }


def hub_process_env(env: dict[str, str], document: Path) -> dict[str, str]:
    """What a hub process gets for ``env``: the hub's variables written to its settings
    document (as the Pulumi component uploads it), anything else as process variables."""
    from jhc_settings import SETTINGS_FILE_VAR, settings_document
    from jhc_variables import BY_VARIABLE

    document.write_text(settings_document({k: v for k, v in env.items() if k in BY_VARIABLE}))
    return {SETTINGS_FILE_VAR: str(document),
            **{k: v for k, v in env.items() if k not in BY_VARIABLE}}


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """load(env) -> Config: execute the real config file with exactly ``env``'s JHC_*
    variables in its settings document."""

    def _load(env: dict[str, str]) -> Config:
        for key in list(os.environ):
            if key.startswith("JHC_"):
                monkeypatch.delenv(key)
        for key, value in hub_process_env(env, tmp_path / "jhc-settings.json").items():
            monkeypatch.setenv(key, value)
        loader = PyFileConfigLoader("jupyterhub_config.py", path=str(HUB_DIR))
        return loader.load_config()

    return _load


def expect_error(load, env: dict[str, str], var: str) -> HubConfigError:
    with pytest.raises(HubConfigError) as info:
        load(env)
    assert info.value.var == var
    assert str(info.value).startswith(f"{var}: ")
    return info.value


class FakeGroup(SimpleNamespace):
    name: str


class FakeUser:
    """Just enough of jupyterhub.user.User for the spawner and the hook."""

    def __init__(self, name: str, groups: tuple[str, ...] = (), auth_state: Any = None):
        self.name = name
        self.groups = [FakeGroup(name=g) for g in groups]
        self._auth_state = auth_state
        self.url = f"/user/{name}/"
        self.id = 1
        self.admin = False
        self.server = None
        self.orm_user = None

    async def get_auth_state(self) -> Any:
        return self._auth_state


def make_spawner(cfg: Config, user: FakeUser):
    from dockerspawner import DockerSpawner

    return DockerSpawner(config=cfg, user=user)


def run(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------------------------
# proxy, hub URLs, secrets, database


def test_proxy_runs_outside_the_hub(load, base_env):
    cfg = load(base_env)
    assert cfg.ConfigurableHTTPProxy.should_start is False
    assert cfg.ConfigurableHTTPProxy.api_url == "http://proxy:8001"
    assert cfg.ConfigurableHTTPProxy.auth_token == "proxy-token-123"
    # a hub restart must leave proxy routes and user containers alone
    assert cfg.JupyterHub.cleanup_servers is False
    assert cfg.JupyterHub.cleanup_proxy is False
    assert cfg.JupyterHub.hub_bind_url == "http://0.0.0.0:8081"
    assert cfg.JupyterHub.hub_connect_url == "http://jupyterhub:8081"
    assert cfg.JupyterHub.authenticate_prometheus is True


def test_proxy_and_hub_overrides(load, base_env):
    env = {
        **base_env,
        "JHC_PROXY_API_URL": "http://chp.internal:9001/",
        "JHC_HUB_PORT": "8091",
        "JHC_HUB_CONNECT_HOST": "hub-x",
        "JHC_PUBLIC_URL": "https://hub.example.org",
    }
    cfg = load(env)
    assert cfg.ConfigurableHTTPProxy.api_url == "http://chp.internal:9001"
    assert cfg.JupyterHub.hub_bind_url == "http://0.0.0.0:8091"
    assert cfg.JupyterHub.hub_connect_url == "http://hub-x:8091"
    assert cfg.JupyterHub.public_url == "https://hub.example.org"


def test_jupyterhub_app_accepts_the_config(load, base_env):
    from jupyterhub.app import JupyterHub

    app = JupyterHub(config=load(base_env))
    assert app.cleanup_servers is False
    assert app.hub_connect_url == "http://jupyterhub:8081"
    assert app.db_url == "sqlite:///jupyterhub.sqlite"
    assert app.allow_named_servers is False


def test_secrets_come_from_files(load, base_env):
    cfg = load(base_env)
    assert cfg.JupyterHub.cookie_secret_file == base_env["JHC_COOKIE_SECRET_FILE"]
    from jupyterhub.crypto import CryptKeeper

    keeper = CryptKeeper(config=cfg)
    assert keeper.keys == [bytes.fromhex("0f" * 32)]
    assert keeper.fernet.decrypt(keeper.fernet.encrypt(b"state")) == b"state"
    assert cfg.Authenticator.enable_auth_state is True


def test_crypt_key_rotation_and_base64(load, base_env, tmp_path):
    import base64

    new = base64.urlsafe_b64encode(b"k" * 32).decode()
    path = _secret(tmp_path / "crypt2", f"{new};{'0f' * 32}")
    cfg = load({**base_env, "JHC_CRYPT_KEY_FILE": path})
    assert cfg.CryptKeeper["keys"] == [b"k" * 32, bytes.fromhex("0f" * 32)]


@pytest.mark.parametrize(
    "var", ["JHC_COOKIE_SECRET_FILE", "JHC_CRYPT_KEY_FILE", "JHC_PROXY_AUTH_TOKEN_FILE"]
)
def test_secret_file_checks(load, base_env, tmp_path, var):
    env = dict(base_env)
    del env[var]
    assert "is required" in str(expect_error(load, env, var))
    env[var] = str(tmp_path / "missing")
    assert "cannot read" in str(expect_error(load, env, var))
    for mode in (0o644, 0o640, 0o604, 0o660, 0o620, 0o610):  # any group or other bit
        env[var] = _secret(tmp_path / f"mode{mode:o}", "a1" * 32, mode)
        assert "use 600" in str(expect_error(load, env, var))
    env[var] = _secret(tmp_path / "empty", "", 0o600)
    expect_error(load, env, var)


def test_cookie_secret_and_crypt_key_format(load, base_env, tmp_path):
    env = {**base_env, "JHC_COOKIE_SECRET_FILE": _secret(tmp_path / "c", "not-hex")}
    assert "hex" in str(expect_error(load, env, "JHC_COOKIE_SECRET_FILE"))
    env = {**base_env, "JHC_CRYPT_KEY_FILE": _secret(tmp_path / "k", "abcd")}
    assert "32 bytes" in str(expect_error(load, env, "JHC_CRYPT_KEY_FILE"))


def test_sqlite_only_without_db_host(load, base_env):
    cfg = load(base_env)
    assert cfg.JupyterHub.db_url.startswith("sqlite:")


def test_postgres_url_carries_the_quoted_password(load, base_env, tmp_path):
    # In the URL, not in db_kwargs: JupyterHub's alembic stamping of a fresh database builds
    # its own engine from the URL only (tests/integration proves it against a real cluster).
    env = {
        **base_env,
        "JHC_DB_HOST": "postgres",
        "JHC_DB_NAME": "hubdb",
        "JHC_DB_USER": "hubuser",
        "JHC_DB_PASSWORD_FILE": _secret(tmp_path / "db", "p@ss:w/rd%"),
    }
    cfg = load(env)
    assert "db_kwargs" not in cfg.JupyterHub
    import sqlalchemy

    url = sqlalchemy.engine.make_url(cfg.JupyterHub.db_url)
    assert (url.drivername, url.host, url.port, url.database, url.username) == (
        "postgresql+psycopg2", "postgres", 5432, "hubdb", "hubuser")
    assert url.password == "p@ss:w/rd%"
    assert "p@ss" not in repr(url)  # SQLAlchemy masks it when the URL is printed
    del env["JHC_DB_PASSWORD_FILE"]
    expect_error(load, env, "JHC_DB_PASSWORD_FILE")
    env["JHC_DB_PASSWORD_FILE"] = _secret(tmp_path / "db2", "x")
    expect_error(load, {**env, "JHC_DB_PORT": "99999"}, "JHC_DB_PORT")
    expect_error(load, {**env, "JHC_DB_USER": "a b"}, "JHC_DB_USER")
    expect_error(load, {**env, "JHC_DB_HOST": "host/evil"}, "JHC_DB_HOST")


# --------------------------------------------------------------------------------------------
# LDAP


def test_ldap_settings(load, base_env):
    from ldapauthenticator import LDAPAuthenticator
    from ldapauthenticator.ldapauthenticator import TlsStrategy

    cfg = load({**base_env, "JHC_ALLOWED_GROUPS": "physics, staff"})
    cls = cfg.JupyterHub.authenticator_class
    assert issubclass(cls, LDAPAuthenticator)
    auth = cls(config=cfg)
    assert auth.server_address == "ldap"
    assert auth.server_port == 389
    assert auth.tls_strategy == TlsStrategy.insecure
    assert auth.lookup_dn is False
    assert auth.bind_dn_template == ["uid={username},ou=people,dc=jhc,dc=internal"]
    assert auth.allowed_groups == [
        "cn=physics,ou=groups,dc=jhc,dc=internal",
        "cn=staff,ou=groups,dc=jhc,dc=internal",
    ]
    assert "memberUid={uid}" in auth.group_search_filter
    assert "posixGroup" in auth.group_search_filter
    assert set(auth.auth_state_attributes) >= {"uidNumber", "uid"}
    assert auth.group_search_base == "ou=groups,dc=jhc,dc=internal"
    assert auth.manage_groups is True
    assert auth.enable_auth_state is True
    assert auth.allow_all is False  # groups restrict who may log in


def test_ldap_allows_every_account_without_allow_rules(load, base_env):
    cfg = load(base_env)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    assert auth.allow_all is True
    assert auth.allowed_groups == []
    assert run(auth.check_allowed("anyone", {"auth_state": {"ldap_groups": []}})) is True


@pytest.mark.parametrize(
    ("strategy", "port"), [("before_bind", 389), ("on_connect", 636), ("insecure", 389)]
)
def test_ldap_tls_strategies(load, base_env, tmp_path, strategy, port):
    from ldapauthenticator.ldapauthenticator import TlsStrategy

    env = {**base_env, "JHC_LDAP_TLS_STRATEGY": strategy.upper()}
    if strategy != "insecure":
        assert "is required" in str(expect_error(load, env, "JHC_LDAP_CA_FILE"))
        env["JHC_LDAP_CA_FILE"] = str(tmp_path / "ca.pem")
    cfg = load(env)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    assert auth.tls_strategy == TlsStrategy[strategy]
    assert auth.server_port == port
    if strategy != "insecure":
        assert auth.tls_kwargs == {"validate": ssl.CERT_REQUIRED, "ca_certs_file": env[
            "JHC_LDAP_CA_FILE"]}


def test_ldap_bad_values(load, base_env):
    expect_error(load, {**base_env, "JHC_LDAP_TLS_STRATEGY": "starttls"}, "JHC_LDAP_TLS_STRATEGY")
    env = dict(base_env)
    del env["JHC_LDAP_BASE_DN"]
    expect_error(load, env, "JHC_LDAP_BASE_DN")
    expect_error(load, {**base_env, "JHC_LDAP_BASE_DN": "example"}, "JHC_LDAP_BASE_DN")
    expect_error(load, {**base_env, "JHC_ALLOWED_GROUPS": "a*)(uid=*"}, "JHC_ALLOWED_GROUPS")
    expect_error(load, {**base_env, "JHC_AUTH": "saml"}, "JHC_AUTH")


class FakeEntry:
    def __init__(self, attrs: dict[str, list[Any]]):
        self.entry_attributes_as_dict = attrs
        self.cn = SimpleNamespace(value=(attrs.get("cn") or [None])[0])


class FakeConn:
    """An ldap3 connection double: the directory of the test below."""

    groups = {"physics": ["alice"], "staff": ["alice", "bob"], "chem": ["carol"]}

    def __init__(self) -> None:
        self.entries: list[FakeEntry] = []
        self.filters: list[str] = []

    def search(self, search_base, search_scope, search_filter, attributes):
        self.filters.append(search_filter)
        match = re.search(r"memberUid=([^)]*)", search_filter)
        if search_filter == "(objectClass=*)":  # the user's own attributes
            self.entries = [FakeEntry({"uid": ["alice"], "uidNumber": [10001], "gidNumber": [100]})]
        elif search_base.startswith("cn="):  # allowed_groups check, base scope
            cn = search_base.split(",")[0][3:]
            self.entries = [FakeEntry({})] if match.group(1) in self.groups.get(cn, []) else []
        else:  # our search for all of the user's posixGroups
            self.entries = [
                FakeEntry({"cn": [cn]}) for cn, members in self.groups.items()
                if match.group(1) in members
            ]
        return bool(self.entries)


def test_ldap_login_records_uid_and_all_groups(load, base_env, monkeypatch):
    cfg = load({**base_env, "JHC_ALLOWED_GROUPS": "staff"})
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    binds: list[tuple[str, str]] = []
    conn = FakeConn()

    def get_connection(userdn, password):
        binds.append((userdn, password))
        return conn if password == "right" else None

    monkeypatch.setattr(auth, "get_connection", get_connection)
    assert run(auth.authenticate(None, {"username": "alice", "password": "wrong"})) is None
    result = run(auth.authenticate(None, {"username": "alice", "password": "right"}))
    assert binds[-1] == ("uid=alice,ou=people,dc=jhc,dc=internal", "right")
    assert result["name"] == "alice"
    assert result["groups"] == ["physics", "staff"]
    assert result["auth_state"]["uid_number"] == 10001
    assert result["auth_state"]["groups"] == ["physics", "staff"]
    assert result["auth_state"]["ldap_groups"] == ["cn=staff,ou=groups,dc=jhc,dc=internal"]
    assert "(&(objectClass=posixGroup)(memberUid=alice))" in conn.filters
    assert run(auth.check_allowed("alice", result)) is True
    assert run(auth.check_allowed("carol", {"auth_state": {"ldap_groups": []}})) is False


def test_ldap_group_filter_matches_the_uid_literally(load, base_env, monkeypatch):
    """A uid holding filter syntax must be an equality match on that exact value.

    Checked on the filter as an LDAP library parses it (ldap3's parser, what a server
    would evaluate): unescaped, "x*" would become a substring match over every member.
    """
    from ldap3.operation.search import MATCH_EQUAL, parse_filter

    cfg = load(base_env)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    for uid in ["x*", "a)(cn=*", "b\\c"]:
        conn = FakeConn()
        monkeypatch.setattr(
            FakeConn, "search",
            lambda self, search_base, search_scope, search_filter, attributes, uid=uid: (
                self.filters.append(search_filter),
                setattr(self, "entries", [FakeEntry({"uid": [uid], "uidNumber": [1]})]
                        if search_filter == "(objectClass=*)" else []))[-1] or True)
        auth.get_user_attributes(conn, "uid=x,ou=people,dc=jhc,dc=internal")
        (group_filter,) = [f for f in conn.filters if "posixGroup" in f]
        tree = parse_filter(group_filter, None, auto_escape=False, auto_encode=False,
                            validator=None, check_names=False)
        (and_node,) = tree.elements
        nodes = {n.assertion["attr"]: n for n in and_node.elements}
        assert set(nodes) == {"objectClass", "memberUid"}, group_filter
        member = nodes["memberUid"]
        assert member.tag == MATCH_EQUAL, group_filter
        raw = member.assertion["value"].decode()
        assert re.sub(r"\\([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), raw) == uid


def test_ldap_login_without_uidnumber_is_refused(load, base_env, monkeypatch):
    cfg = load(base_env)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    conn = FakeConn()
    monkeypatch.setattr(
        FakeConn, "search",
        lambda self, search_base, search_scope, search_filter, attributes: setattr(
            self, "entries", [FakeEntry({"uid": ["alice"]})]) or True,
    )
    monkeypatch.setattr(auth, "get_connection", lambda userdn, password: conn)
    assert run(auth.authenticate(None, {"username": "alice", "password": "right"})) is None


@pytest.mark.parametrize("password", ["", "   ", None])
def test_ldap_blank_password_never_reaches_the_directory(load, base_env, monkeypatch, password):
    """The old trap (ldapauthenticator #44): an empty simple bind is an anonymous bind."""
    cfg = load(base_env)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)

    def get_connection(userdn, password):
        raise AssertionError("must not bind with a blank password")

    monkeypatch.setattr(auth, "get_connection", get_connection)
    assert run(auth.authenticate(None, {"username": "alice", "password": password})) is None


def test_ldap_rejects_injection_usernames(load, base_env, monkeypatch):
    cfg = load(base_env)
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    monkeypatch.setattr(auth, "get_connection", lambda u, p: pytest.fail("must not bind"))
    for name in ["*", "alice)(uid=*", "../x", "Alice,ou=x"]:
        assert run(auth.authenticate(None, {"username": name, "password": "pw"})) is None


# --------------------------------------------------------------------------------------------
# GitHub


@pytest.fixture
def github_env(base_env, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in base_env.items() if k != "JHC_LDAP_BASE_DN"}
    env.update(
        JHC_AUTH="github",
        JHC_GITHUB_CLIENT_ID="Iv1.abc",
        JHC_GITHUB_CLIENT_SECRET_FILE=_secret(tmp_path / "gh", "gh-secret"),
        JHC_PUBLIC_URL="https://hub.example.org",
        JHC_GITHUB_ALLOWED_ORGS="my-org,other:team-1",
    )
    return env


def test_github_settings(load, github_env):
    from oauthenticator.github import GitHubOAuthenticator

    cfg = load(github_env)
    assert cfg.JupyterHub.authenticator_class is GitHubOAuthenticator
    auth = GitHubOAuthenticator(config=cfg)
    assert auth.client_id == "Iv1.abc"
    assert auth.client_secret == "gh-secret"
    assert auth.oauth_callback_url == "https://hub.example.org/hub/oauth_callback"
    assert auth.allowed_organizations == {"my-org", "other:team-1"}
    assert "read:org" in auth.scope
    assert auth.allow_all is False
    assert auth.enable_auth_state is True


def test_github_allow_rules_are_mandatory(load, github_env):
    from oauthenticator.github import GitHubOAuthenticator

    env = {**github_env, "JHC_GITHUB_ALLOWED_ORGS": ""}
    expect_error(load, env, "JHC_GITHUB_ALLOWED_ORGS")
    cfg = load({**env, "JHC_ALLOWED_USERS": "Octo-Cat"})
    auth = GitHubOAuthenticator(config=cfg)
    assert auth.allowed_organizations == set()
    assert run(auth.check_allowed("octo-cat", {"name": "octo-cat", "admin": False, "auth_state": {}})) is True
    assert run(auth.check_allowed("mallory", {"name": "mallory", "admin": False, "auth_state": {}})) is False


def test_github_required_values(load, github_env):
    for var in ["JHC_GITHUB_CLIENT_ID", "JHC_GITHUB_CLIENT_SECRET_FILE"]:
        env = dict(github_env)
        del env[var]
        expect_error(load, env, var)
    env = dict(github_env)
    del env["JHC_PUBLIC_URL"]
    expect_error(load, env, "JHC_GITHUB_CALLBACK_URL")
    cfg = load({**env, "JHC_GITHUB_CALLBACK_URL": "https://x.example/hub/oauth_callback"})
    assert cfg.GitHubOAuthenticator.oauth_callback_url == "https://x.example/hub/oauth_callback"


def test_github_groups(load, github_env):
    cfg = load({**github_env, "JHC_GROUPS_JSON": '{"physics": ["Alice", "bob"]}'})
    assert cfg.JupyterHub.load_groups == {"physics": {"users": ["alice", "bob"]}}
    expect_error(load, {**github_env, "JHC_GROUPS_JSON": '{"x": ["../a"]}'}, "JHC_GROUPS_JSON")
    expect_error(load, {**github_env, "JHC_GROUPS_JSON": "[1]"}, "JHC_GROUPS_JSON")


# --------------------------------------------------------------------------------------------
# users


def test_user_lists_are_normalised(load, base_env):
    env = {
        **base_env,
        "JHC_ADMIN_USERS": " Alice ,root2",
        "JHC_ALLOWED_USERS": "BOB,carol,,",
        "JHC_BLOCKED_USERS": "Mallory",
    }
    cfg = load(env)
    assert cfg.Authenticator.admin_users == {"alice", "root2"}
    assert cfg.Authenticator.allowed_users == {"bob", "carol", "alice", "root2"}
    assert cfg.Authenticator.blocked_users == {"mallory"}
    assert cfg.Authenticator.allow_existing_users is False
    auth = cfg.JupyterHub.authenticator_class(config=cfg)
    assert auth.allow_all is False
    assert run(auth.check_allowed("bob", {"auth_state": {}})) is True
    assert run(auth.check_allowed("dave", {"auth_state": {}})) is False
    assert auth.check_blocked_users("mallory", None) is False
    assert auth.check_blocked_users("bob", None) is True
    # the hub normalises login names the same way before checking the lists
    assert auth.normalize_username("BOB") == "bob"
    assert auth.validate_username("bob") and not auth.validate_username("bad/name")


@pytest.mark.parametrize("var", ["JHC_ADMIN_USERS", "JHC_ALLOWED_USERS", "JHC_BLOCKED_USERS"])
def test_bad_usernames_in_lists(load, base_env, var):
    assert "invalid username" in str(expect_error(load, {**base_env, var: "ok,../etc"}, var))


# --------------------------------------------------------------------------------------------
# images


def test_allowed_images_are_explicit_and_per_group(load, base_env):
    from tornado.web import HTTPError

    cfg = load(base_env)
    assert callable(cfg.DockerSpawner.allowed_images)
    assert cfg.DockerSpawner.pull_policy == "never"
    plain = make_spawner(cfg, FakeUser("bob", ("staff",)))
    physicist = make_spawner(cfg, FakeUser("alice", ("physics",)))
    everyone = {"minimal": "jhc/minimal:1", "scipy": "sha256:" + "ab" * 32}
    assert plain._get_allowed_images() == everyone
    assert physicist._get_allowed_images() == {**everyone, "gpu": "jhc/gpu:2"}
    for spawner in (plain, physicist):
        assert spawner._get_allowed_images() != "*"
    assert run(physicist.check_allowed("gpu")) == "jhc/gpu:2"
    with pytest.raises(HTTPError):
        run(plain.check_allowed("gpu"))
    with pytest.raises(HTTPError):
        run(plain.check_allowed("jhc/gpu:2"))
    with pytest.raises(HTTPError):
        run(plain.check_allowed("ubuntu:latest"))


def test_options_form_lists_display_names(load, base_env):
    cfg = load(base_env)
    form = cfg.DockerSpawner.options_form
    bob = make_spawner(cfg, FakeUser("bob"))
    alice = make_spawner(cfg, FakeUser("alice", ("physics",)))
    html = form(bob)
    assert '<option value="minimal">Minimal &lt;Python&gt;</option>' in html
    assert "gpu" not in html
    assert '<option value="gpu">Physics GPU</option>' in form(alice)
    assert bob.options_from_form({"image": ["scipy"]}) == {"image": "scipy"}
    single = load({**base_env, "JHC_IMAGES_JSON": json.dumps(IMAGES[:1])})
    assert single.DockerSpawner.options_form(bob) == ""


@pytest.mark.parametrize(
    "images",
    [
        None,
        "[]",
        "{}",
        "not json",
        '[{"name": "x", "image": "*"}]',
        '[{"name": "x"}]',
        '[{"name": "Bad Name", "image": "a"}]',
        '[{"name": "x", "image": "a"}, {"name": "x", "image": "b"}]',
        '[{"name": "x", "image": "a", "groups": "physics"}]',
        '[{"name": "x", "image": "a", "extra": 1}]',
    ],
)
def test_bad_image_menus(load, base_env, images):
    env = dict(base_env)
    if images is None:
        del env["JHC_IMAGES_JSON"]
    else:
        env["JHC_IMAGES_JSON"] = images
    expect_error(load, env, "JHC_IMAGES_JSON")


# --------------------------------------------------------------------------------------------
# containers: limits, security, environment


def test_container_limits_and_security(load, base_env):
    cfg = load(base_env)
    d = cfg.DockerSpawner
    from dockerspawner import DockerSpawner

    # DockerSpawner (its config section applies to the subclass), see jhc_spawn
    assert issubclass(cfg.JupyterHub.spawner_class, DockerSpawner)
    assert d.network_name == "jhc-frontend"
    assert d.remove is True
    assert d.mem_limit == "2G"
    assert d.cpu_limit == 1.0
    assert d.extra_create_kwargs == {"user": "root"}
    host = d.extra_host_config
    # The whole host config, not selected keys: anything added later (privileged, devices,
    # pid/ipc/network modes, extra mounts) widens what user code can reach and must be
    # reviewed here.
    assert {k: sorted(v) if isinstance(v, list) else v for k, v in host.items()} == {
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "cap_add": ["CHOWN", "SETGID", "SETUID"],
        "pids_limit": 1024,
    }
    assert cfg.Spawner.disable_user_config is True
    spawner = make_spawner(cfg, FakeUser("bob"))
    assert spawner.mem_limit == 2 * 1024**3
    assert spawner.use_internal_ip is True
    assert spawner.disable_user_config is True


def test_limit_overrides(load, base_env):
    cfg = load({**base_env, "JHC_MEM_LIMIT": "512M", "JHC_CPU_LIMIT": "1.5",
                "JHC_PIDS_LIMIT": "0", "JHC_NETWORK": "other", "JHC_START_TIMEOUT": "300"})
    assert cfg.DockerSpawner.mem_limit == "512M"
    assert cfg.DockerSpawner.cpu_limit == 1.5
    assert "pids_limit" not in cfg.DockerSpawner.extra_host_config
    assert cfg.DockerSpawner.network_name == "other"
    assert cfg.Spawner.start_timeout == 300
    cfg = load({**base_env, "JHC_MEM_LIMIT": "0", "JHC_CPU_LIMIT": "0"})
    assert "mem_limit" not in cfg.DockerSpawner and "cpu_limit" not in cfg.DockerSpawner
    expect_error(load, {**base_env, "JHC_MEM_LIMIT": "lots"}, "JHC_MEM_LIMIT")
    expect_error(load, {**base_env, "JHC_CPU_LIMIT": "two"}, "JHC_CPU_LIMIT")
    expect_error(load, {**base_env, "JHC_PIDS_LIMIT": "-1"}, "JHC_PIDS_LIMIT")
    expect_error(load, {**base_env, "JHC_START_TIMEOUT": "1"}, "JHC_START_TIMEOUT")


def test_no_hub_environment_leaks_into_user_containers(load, base_env, monkeypatch):
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "leak-me")
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "leak-me")
    cfg = load({**base_env, "JHC_DB_PASSWORD": "leak-me"})
    assert cfg.Spawner.env_keep == []
    spawner = make_spawner(cfg, FakeUser("bob"))
    spawner.api_token = "the-api-token"
    spawner.hub = SimpleNamespace(api_url="http://jupyterhub:8081/hub/api",
                                  base_url="/hub/", public_host="")
    spawner.server = None
    env = spawner.get_env()
    assert env["JUPYTERHUB_API_TOKEN"] == "the-api-token"
    assert "leak-me" not in json.dumps(env)
    assert not [key for key in env if key.startswith(("JHC_", "CONFIGPROXY"))]


# --------------------------------------------------------------------------------------------
# the pre-spawn hook: homes, mounts, uid


def _spawn_env(base_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **base_env,
        "JHC_HOMES_HOST_DIR": "/srv/jupyterhub/homes",
        "JHC_SHARED_HOST_DIR": "/srv/jupyterhub/shared",
        "JHC_DATASETS_JSON": json.dumps([
            {"name": "census", "host_path": "/srv/jupyterhub/datasets/census"},
            {"name": "genome", "host_path": "/data/genome/"},
        ]),
    }


def test_pre_spawn_hook_sets_up_the_container(load, base_env, tmp_path):
    cfg = load(_spawn_env(base_env, tmp_path))
    user = FakeUser("alice", ("physics",), {"uid_number": 10001, "groups": ["physics"]})
    spawner = make_spawner(cfg, user)
    spawner.user_options = {}
    run(cfg.Spawner.pre_spawn_hook(spawner))

    assert spawner.volume_binds == {
        "/srv/jupyterhub/homes/alice": {"bind": "/home/alice", "mode": "rw"},
        "/srv/jupyterhub/shared": {"bind": "/home/alice/shared", "mode": "rw"},
        "/srv/jupyterhub/datasets/census": {"bind": "/home/alice/datasets/census", "mode": "ro"},
        "/data/genome": {"bind": "/home/alice/datasets/genome", "mode": "ro"},
    }
    assert not any("docker.sock" in path for path in spawner.volume_binds)
    assert spawner.environment == {
        "NB_USER": "alice", "NB_UID": "10001", "NB_GID": "100", "CHOWN_HOME": "no"}
    assert spawner.notebook_dir == "/home/alice"
    # start.sh, as root without DAC_OVERRIDE, could not `cd` into the 0700 home itself
    assert spawner.extra_create_kwargs == {"user": "root", "working_dir": "/home/alice"}
    assert spawner.image == "jhc/minimal:1"  # default = first image the user may start

    home = Path(base_env["JHC_HOMES_HUB_DIR"]) / "alice"
    st = home.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700
    if IS_ROOT:
        assert (st.st_uid, st.st_gid) == (10001, 100)
    for sub in ["shared", "datasets", "datasets/census", "datasets/genome"]:
        assert (home / sub).is_dir() and not (home / sub).is_symlink()
        if IS_ROOT:
            assert (home / sub).stat().st_uid == 10001


def test_pre_spawn_hook_uid_sources(load, base_env, tmp_path):
    cfg = load({**base_env, "JHC_UIDS_JSON": '{"Octo": 20002}', "JHC_SHARED_HOST_DIR": "none"})
    spawner = make_spawner(cfg, FakeUser("octo", (), None))
    spawner.user_options = {"image": "scipy"}
    spawner.image = "something:else"
    run(cfg.Spawner.pre_spawn_hook(spawner))
    assert spawner.environment["NB_UID"] == "20002"
    assert spawner.volumes == {"/srv/jupyterhub/homes/octo": "/home/octo"}  # no shared dir
    assert spawner.read_only_volumes == {}
    assert spawner.image == "something:else"  # the chosen image is resolved by DockerSpawner
    nobody = make_spawner(cfg, FakeUser("nouid", (), {"uid_number": None}))
    nobody.user_options = {}
    with pytest.raises(HomeDirError, match="no uidNumber"):
        run(cfg.Spawner.pre_spawn_hook(nobody))
    assert not (Path(base_env["JHC_HOMES_HUB_DIR"]) / "nouid").exists()
    expect_error(load, {**base_env, "JHC_UIDS_JSON": '{"x": 0}'}, "JHC_UIDS_JSON")
    expect_error(load, {**base_env, "JHC_UIDS_JSON": '{"x": "1001"}'}, "JHC_UIDS_JSON")


def test_pre_spawn_hook_default_image_is_one_the_user_may_start(load, base_env):
    images = [IMAGES[2], IMAGES[0]]  # the group-only image first
    cfg = load({**base_env, "JHC_IMAGES_JSON": json.dumps(images)})
    bob = make_spawner(cfg, FakeUser("bob", (), {"uid_number": 10002}))
    assert bob.image == "jhc/gpu:2"  # DockerSpawner's fallback before the hook ran
    bob.user_options = {}
    run(cfg.Spawner.pre_spawn_hook(bob))
    assert bob.image == "jhc/minimal:1"


def test_pre_spawn_hook_refuses_users_without_images(load, base_env):
    only_group = [{"name": "gpu", "image": "jhc/gpu:2", "groups": ["physics"]}]
    cfg = load({**base_env, "JHC_IMAGES_JSON": json.dumps(only_group)})
    spawner = make_spawner(cfg, FakeUser("bob", (), {"uid_number": 10002}))
    spawner.user_options = {}
    with pytest.raises(HomeDirError, match="no notebook image"):
        run(cfg.Spawner.pre_spawn_hook(spawner))


def test_bad_mount_settings(load, base_env):
    for var in ["JHC_HOMES_HOST_DIR", "JHC_HOMES_HUB_DIR", "JHC_SHARED_HOST_DIR"]:
        expect_error(load, {**base_env, var: "relative/path"}, var)
        expect_error(load, {**base_env, var: "/srv/{username}"}, var)
    for datasets in [
        '[{"name": "x", "host_path": "rel"}]',
        '[{"name": "x", "host_path": "/a/../etc"}]',
        '[{"name": "../x", "host_path": "/a"}]',
        '[{"name": "x"}]',
        '{"name": "x", "host_path": "/a"}',
    ]:
        expect_error(load, {**base_env, "JHC_DATASETS_JSON": datasets}, "JHC_DATASETS_JSON")


# ensure_home for real on tmp_path


def test_ensure_home_creates_owned_private_dir(tmp_path):
    home = jhc_hub.ensure_home(tmp_path, "alice", 10001, 100, ["shared", "datasets/x"])
    assert home == tmp_path / "alice"
    st = home.stat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    if IS_ROOT:
        assert (st.st_uid, st.st_gid) == (10001, 100)
        assert (home / "datasets" / "x").stat().st_uid == 10001
    # idempotent, and it keeps what the user stored
    (home / "notes.txt").write_text("mine")
    jhc_hub.ensure_home(tmp_path, "alice", 10001, 100, ["shared"])
    assert (home / "notes.txt").read_text() == "mine"


def test_home_naming_is_frozen():
    """The directory is the plain username, never DockerSpawner's escaped form."""
    assert jhc_hub.home_dir_for("/homes", "a.b-c_1") == Path("/homes/a.b-c_1")
    assert jhc_hub.user_mounts(
        jhc_hub.SpawnSettings((), "/srv/jupyterhub/homes", "/homes", None, (), {}), "a.b-c_1"
    ) == ({"/srv/jupyterhub/homes/a.b-c_1": "/home/a.b-c_1"}, {})


@pytest.mark.parametrize(
    "name", ["../etc", "..", ".", "", "a/b", "/abs", "Alice", "alice\n", "a" * 33, "root",
             "12345", ".hidden", "a b", "ali\x00ce"],
)
def test_ensure_home_refuses_bad_usernames(tmp_path, name):
    with pytest.raises(ValueError):
        jhc_hub.ensure_home(tmp_path / "homes", name, 10001)
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("uid", [0, 1, 999, 2**31])
def test_ensure_home_refuses_system_uids(tmp_path, uid):
    with pytest.raises(HomeDirError):
        jhc_hub.ensure_home(tmp_path, "alice", uid)
    assert not (tmp_path / "alice").exists()


def test_ensure_home_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o755)
    homes = tmp_path / "homes"
    homes.mkdir()
    (homes / "eve").symlink_to(outside)
    with pytest.raises(HomeDirError):
        jhc_hub.ensure_home(homes, "eve", 10001)
    # a symlink planted inside a real home where a mount point goes
    jhc_hub.ensure_home(homes, "mallory", 10002)
    (homes / "mallory" / "shared").symlink_to(outside)
    with pytest.raises(HomeDirError):
        jhc_hub.ensure_home(homes, "mallory", 10002, 100, ["shared"])
    (homes / "mallory" / "shared").unlink()
    (homes / "mallory" / "datasets").symlink_to(outside)
    with pytest.raises(HomeDirError):
        jhc_hub.ensure_home(homes, "mallory", 10002, 100, ["datasets/x"])
    assert list(outside.iterdir()) == []
    st = outside.stat()
    assert stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == os.geteuid()


@pytest.mark.needs("root")  # chown to other uids
def test_ensure_home_ownership_rules(tmp_path):
    # someone else's home is refused, not taken over
    other = tmp_path / "bob"
    other.mkdir()
    os.chown(other, 10009, 100)
    with pytest.raises(HomeDirError, match="owned by uid 10009"):
        jhc_hub.ensure_home(tmp_path, "bob", 10002)
    assert other.stat().st_uid == 10009
    # an empty root-owned home (what Docker creates for a missing bind source) is repaired
    trap = tmp_path / "carol"
    trap.mkdir(mode=0o755)
    jhc_hub.ensure_home(tmp_path, "carol", 10003)
    assert (trap.stat().st_uid, stat.S_IMODE(trap.stat().st_mode)) == (10003, 0o700)
    # but not a root-owned home with content
    (tmp_path / "dave").mkdir()
    (tmp_path / "dave" / "file").write_text("x")
    with pytest.raises(HomeDirError):
        jhc_hub.ensure_home(tmp_path, "dave", 10004)


# --------------------------------------------------------------------------------------------
# idle culler


def test_culler_service_and_role(load, base_env):
    cfg = load({**base_env, "JHC_CULL_TIMEOUT": "1800", "JHC_CULL_EVERY": "60"})
    (service,) = cfg.JupyterHub.services
    assert service["name"] == "idle-culler"
    assert service["command"] == [sys.executable, "-m", "jupyterhub_idle_culler",
                                  "--timeout=1800", "--cull-every=60"]
    assert "admin" not in service
    (role,) = cfg.JupyterHub.load_roles
    assert role["services"] == ["idle-culler"]
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers",
                                   "delete:servers"}
    import jupyterhub_idle_culler  # noqa: F401  the command's module exists
    from jupyterhub.app import JupyterHub

    app = JupyterHub(config=cfg)
    assert app.services[0]["name"] == "idle-culler"


def test_culler_defaults_and_disable(load, base_env):
    cfg = load(base_env)
    assert "--timeout=3600" in cfg.JupyterHub.services[0]["command"]
    assert "--cull-every=300" in cfg.JupyterHub.services[0]["command"]
    cfg = load({**base_env, "JHC_CULL_TIMEOUT": "0"})
    assert cfg.JupyterHub.services == [] and cfg.JupyterHub.load_roles == []
    expect_error(load, {**base_env, "JHC_CULL_TIMEOUT": "soon"}, "JHC_CULL_TIMEOUT")


# --------------------------------------------------------------------------------------------
# revocation check (behaviour against the real services: tests/integration/test_platform_revoke.py)


def test_revoke_service_runs_with_the_read_only_account(load, base_env, tmp_path):
    ro = _secret(tmp_path / "ro", "ro-password")
    cfg = load({**base_env, "JHC_LDAP_READONLY_PASSWORD_FILE": ro, "JHC_REVOKE_EVERY": "30"})
    service = next(s for s in cfg.JupyterHub.services if s["name"] == "revoke")
    script = Path(service["command"][1])
    assert service["command"][0] == sys.executable and script == HUB_DIR / "jhc_revoke.py"
    assert script.is_file() and "admin" not in service
    # it names the settings document only, never a secret
    assert set(service["environment"]) == {"JHC_SETTINGS_FILE"}
    role = next(r for r in cfg.JupyterHub.load_roles if r["name"] == "revoke")
    assert role["services"] == ["revoke"]
    assert set(role["scopes"]) == {"list:users", "read:users", "admin:auth_state",
                                   "admin:users"}
    # entryCSN is recorded at login for the comparison
    assert "entryCSN" in cfg.LDAPAuthenticator.auth_state_attributes
    # without the read account there is no check (and no role)
    cfg = load(base_env)
    assert [s["name"] for s in cfg.JupyterHub.services] == ["idle-culler"]
    expect_error(load, {**base_env, "JHC_LDAP_READONLY_PASSWORD_FILE": str(tmp_path / "none")},
                 "JHC_LDAP_READONLY_PASSWORD_FILE")
    expect_error(load, {**base_env, "JHC_LDAP_READONLY_PASSWORD_FILE": ro,
                        "JHC_REVOKE_EVERY": "0"}, "JHC_REVOKE_EVERY")


def test_revocation_check_stops_at_its_hubs_sigint_even_if_started_ignoring_it(base_env,
                                                                             tmp_path):
    import signal
    import socket
    import subprocess

    ports = []
    for _ in range(2):  # nothing listens: the hub API and LDAP both refuse at once
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    env = hub_process_env({
        **base_env, "JHC_LDAP_READONLY_PASSWORD_FILE": _secret(tmp_path / "ro", "ro-password"),
        "JHC_LDAP_SERVER": "127.0.0.1", "JHC_LDAP_PORT": str(ports[0]),
        "JHC_LDAP_TLS_STRATEGY": "insecure", "JHC_REVOKE_EVERY": "600"}, tmp_path / "doc.json")
    proc = subprocess.Popen(
        [sys.executable, str(HUB_DIR / "jhc_revoke.py")], stderr=subprocess.PIPE, text=True,
        env={"PATH": os.environ["PATH"], **env, "JUPYTERHUB_API_TOKEN": "t",
             "JUPYTERHUB_API_URL": f"http://127.0.0.1:{ports[1]}/hub/api"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as a hub passes it
    try:
        assert proc.stderr is not None
        assert "revocation check failed" in proc.stderr.readline()  # round 1 done: it sleeps
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) != 0
    finally:
        proc.kill()
        proc.wait()


def test_revocation_check_pages_through_every_user():
    # GET /users answers at most 200 per request: a class of 450 must be checked whole
    import urllib.parse

    from jhc_revoke import HubApi

    everyone = [f"u{i}" for i in range(450)]

    class Paged(HubApi):
        def call(self, method, path):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            offset, limit = int(query["offset"][0]), min(int(query["limit"][0]), 200)
            return [{"name": n} for n in everyone[offset:offset + limit]]

    assert Paged("http://hub", "t").user_names() == everyone


def test_revocation_reasons():
    from jhc_revoke import revocation_reason

    live = {"description": ["jhc:managed"], "entryCSN": "20261122070000.000001Z#000000#000#000000"}
    csn = live["entryCSN"]
    assert revocation_reason("ann", live, csn, ()) is None
    assert revocation_reason("ann", live, None, ()) is None  # logged in before the check existed
    assert revocation_reason("ann", live, csn, ("ann",)) == "blocked"
    assert revocation_reason("ann", None, csn, ()) == "no longer in the directory"
    disabled = {**live, "description": ["jhc:managed", "JHC:Disabled"]}
    assert revocation_reason("ann", disabled, csn, ()) == "disabled in the directory"
    changed = {**live, "entryCSN": "20261122070001.000002Z#000000#000#000000"}
    assert "changed since login" in revocation_reason("ann", changed, csn, ())


# --------------------------------------------------------------------------------------------
# documentation stays in sync with the code


def test_every_variable_is_declared_and_documented():
    """Every JHC_* name the hub's code reads is in the one table, every row is read, and
    docs/hub.md carries the table as generated (run scripts/hub_reference.py)."""
    from jhc_variables import VARIABLES

    from scripts import hub_reference

    code = "".join((HUB_DIR / name).read_text() for name in ("jhc_settings.py", "jhc_menu.py",
                                                          "jhc_document.py"))
    used = set(re.findall(r'"(JHC_[A-Z0-9_]+)"', code)) - {"JHC_SETTINGS_FILE"}
    declared = {v.name for v in VARIABLES}
    assert len(used) > 30
    assert used == declared
    text = (ROOT / "docs" / "hub.md").read_text()
    assert text == hub_reference.render(text), "run scripts/hub_reference.py"
    in_docs = set(re.findall(r"^\| `(JHC_[A-Z0-9_]+)` ", text, flags=re.M))
    assert in_docs == declared


def test_undeclared_variables_cannot_be_read():
    with pytest.raises(KeyError):
        jhc_hub.Env({}).raw("JHC_NOT_IN_THE_TABLE")


# --------------------------------------------------------------------------------------------
# the image


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (HUB_DIR / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"unpinned requirement {line!r}"
            pins[name.lower()] = version
    return pins


def test_requirements_are_pinned_and_match_the_tested_versions():
    from importlib.metadata import version

    pins = _requirements()
    assert set(pins) >= {"jupyterhub", "dockerspawner", "jupyterhub-ldapauthenticator",
                         "oauthenticator", "jupyterhub-idle-culler", "psycopg2-binary"}
    for name, pinned in pins.items():
        assert version(name) == pinned, name


def test_dockerfile():
    text = (HUB_DIR / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert froms == [f"FROM quay.io/jupyterhub/jupyterhub:{_requirements()['jupyterhub']}"]
    # nothing secret (or secret-looking) in build args, environment or labels
    for line in instructions:
        keyword = line.split()[0]
        assert keyword not in ("ARG", "ENV", "LABEL"), line
    assert "docker.sock" not in text
    joined = text.replace("\\\n", " ")
    copy = next(line for line in joined.splitlines() if line.startswith("COPY jupyterhub_config.py"))
    # the config imports its helper modules, so all must be in the image, side by side
    modules = sorted(path.name for path in HUB_DIR.glob("*.py") if path.name != "__init__.py")
    assert sorted(copy.split()[1:-1]) == modules
    assert copy.split()[-1] == "/etc/jupyterhub/"
    assert 'CMD ["jupyterhub", "-f", "/etc/jupyterhub/jupyterhub_config.py"]' in instructions
    assert "-r /tmp/jhc-hub-requirements.txt" in text


def test_github_logins_get_registered_uids(load, github_env, tmp_path, monkeypatch):
    """The hook asks the hub's database (here its default SQLite file) for the uid."""
    import hashlib

    monkeypatch.chdir(tmp_path)  # the SQLite db_url is relative to the hub's directory
    cfg = load({**github_env, "JHC_SHARED_HOST_DIR": "none",
                "JHC_UIDS_JSON": json.dumps({"declared": 5001})})

    def spawn(name: str) -> int:
        spawner = make_spawner(cfg, FakeUser(name, (), None))
        spawner.user_options = {}
        run(cfg.Spawner.pre_spawn_hook(spawner))
        return int(spawner.environment["NB_UID"])

    # The first choice is the name-derived uid earlier versions gave: homes keep their owner.
    first = 200_000 + int.from_bytes(hashlib.sha256(b"octo-cat").digest()[:8], "big") % 1_000_000
    assert spawn("octo-cat") == first
    assert spawn("declared") == 5001
    assert spawn("octo-cat") == first
    assert (tmp_path / "jupyterhub.sqlite").exists()  # remembered in the hub's database


def test_shared_dir_made_group_writable_before_spawn(load, base_env, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    cfg = load({**base_env, "JHC_SHARED_HUB_DIR": str(shared)})
    spawner = make_spawner(cfg, FakeUser("alice", (), {"uid_number": 10001, "groups": []}))
    spawner.user_options = {}
    run(cfg.Spawner.pre_spawn_hook(spawner))
    if IS_ROOT:
        st = shared.stat()
        assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (100, 0o2775)
    else:
        assert shared.is_dir()


# --------------------------------------------------------------------------------------------
# Swarm mode (JHC_SPAWNER=swarm): the same hook, the container's settings in the service spec


def test_swarm_pre_spawn_hook_puts_the_workdir_in_the_container_spec(load, base_env, tmp_path):
    digest = "10.0.0.5:5000/jhc-notebook-minimal@sha256:" + "ab" * 32
    images = [{"name": "minimal", "display_name": "Minimal", "image": digest, "groups": []}]
    cfg = load({**_spawn_env(base_env, tmp_path), "JHC_SPAWNER": "swarm",
                "JHC_IMAGES_JSON": json.dumps(images)})
    user = FakeUser("alice", ("physics",), {"uid_number": 10001, "groups": ["physics"]})
    spawner = cfg.JupyterHub.spawner_class(config=cfg, user=user)
    spawner.user_options = {}
    run(cfg.Spawner.pre_spawn_hook(spawner))
    # SwarmSpawner hands extra_create_kwargs to create_service: nothing of the container there
    assert spawner.extra_create_kwargs == {}
    assert spawner.extra_container_spec == {
        "user": "root", "cap_add": ["CHOWN", "SETUID", "SETGID"], "cap_drop": ["ALL"],
        "workdir": "/home/alice"}
    assert spawner.image == digest
    assert spawner.pids_limit == 1024
    assert spawner.mem_guarantee == 1024**3 and spawner.cpu_guarantee == 0.25  # of 2G, 1 CPU
    # the service's mounts: the same binds as on one host, datasets read-only
    mounts = {m["Target"]: m for m in spawner.mounts}
    assert mounts["/home/alice/datasets/census"]["ReadOnly"] is True
    assert mounts["/home/alice"].get("ReadOnly", False) is False
    assert not [m for m in spawner.mounts if "docker.sock" in m["Source"]]
