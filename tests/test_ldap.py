"""Tests of the LDAP service against a real slapd from Debian's packages (no Docker).

Needs (CI installs them): apt-get install slapd ldap-utils (with debconf
slapd/no_configuration=true), and ldap3==2.9.1 in the venv. Runs as root (slapd is started
from the test and not asked to drop privileges).

Each server is bootstrapped with the project's own bootstrap.py and LDIF templates into temp
dirs, so it has the same cn=config as the image, and listens on a loopback port only.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.utils.conv import escape_filter_chars

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.ldap import bootstrap, desired, reconcile  # noqa: E402

LDAP_DIR = ROOT / "services" / "ldap"
BASE = "dc=jhc,dc=test"
STARTUP_TIMEOUT = 15.0


#: a test that starts slapd or runs the bootstrap against it (tests/conftest.py: `needs`)
SLAPD = pytest.mark.needs("slapd", "slapadd", "slappasswd", "ldapsearch", "slapcat")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_secret(path: Path, value: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return path


@dataclass
class Slapd:
    """A running test slapd and what the tests need to talk to it."""

    root: Path
    url: str
    ldapi_url: str
    admin_password: str
    readonly_password: str
    admin_password_file: Path
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def conn(self, user: str | None = None, password: str | None = None) -> ldap3.Connection:
        """A bound connection (raises if the bind fails)."""
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(server, user=user, password=password, auto_bind=True,
                                raise_exceptions=False, receive_timeout=10)

    def admin(self) -> ldap3.Connection:
        return self.conn(f"cn=admin,{BASE}", self.admin_password)

    def readonly(self) -> ldap3.Connection:
        return self.conn(f"cn=readonly,{BASE}", self.readonly_password)

    def can_bind(self, dn: str, password: str | bytes) -> bool:
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        conn = ldap3.Connection(server, user=dn, password=password, raise_exceptions=False)
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()


def bootstrap_env(root: Path, admin_pw: Path, ro_pw: Path) -> dict[str, str]:
    """The environment the image's entrypoint gives bootstrap.py, with temp dirs."""
    return {
        **os.environ,
        "LDAP_BASE_DN": BASE,
        "LDAP_ORGANISATION": "Jupyter Hub Cloud — Test Org",
        "LDAP_ADMIN_PASSWORD_FILE": str(admin_pw),
        "LDAP_READONLY_PASSWORD_FILE": str(ro_pw),
        "LDAP_CONFIG_DIR": str(root / "config"),
        "LDAP_DATA_DIR": str(root / "data"),
        "LDAP_RUN_DIR": str(root / "run"),
    }


def run_bootstrap(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(LDAP_DIR / "bootstrap.py")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def start_slapd(root: Path) -> Slapd:
    """Bootstrap into root/ with the project's bootstrap and start slapd on loopback."""
    admin_password = "adm-" + secrets.token_urlsafe(18)
    readonly_password = "ro-" + secrets.token_urlsafe(18)
    # A trailing newline, as `echo > file` would leave: must not become part of the password.
    admin_file = _write_secret(root / "admin.pw", admin_password + "\n")
    ro_file = _write_secret(root / "readonly.pw", readonly_password)
    result = run_bootstrap(bootstrap_env(root, admin_file, ro_file))
    assert result.returncode == 0, result.stderr
    (root / "run").mkdir(exist_ok=True)
    port = _free_port()
    ldapi = "ldapi://" + urllib.parse.quote(str(root / "run" / "ldapi"), safe="")
    url = f"ldap://127.0.0.1:{port}"
    log = root / "slapd.log"
    with open(log, "wb") as log_fh:
        # Same debug level as the image's default (LDAP_LOG_LEVEL=stats).
        proc = subprocess.Popen(
            ["slapd", "-d", "stats", "-h", f"{url}/ {ldapi}", "-F", str(root / "config")],
            stdout=log_fh, stderr=subprocess.STDOUT,
        )
    server = Slapd(root, url, ldapi, admin_password, readonly_password, admin_file, log, proc)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"slapd exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if server.can_bind(f"cn=readonly,{BASE}", readonly_password):
                return server
        except ldap3.core.exceptions.LDAPException:
            pass
        if time.monotonic() > deadline:
            stop_slapd(server)
            raise AssertionError(f"slapd not ready in {STARTUP_TIMEOUT}s: "
                                 f"{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop_slapd(server: Slapd) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One server for tests that only read or bind."""
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    stop_slapd(server)


@pytest.fixture
def fresh(slapd: Slapd) -> Slapd:
    """The module's server with ou=people and ou=groups emptied: reconcile acts on every
    managed entry, so each reconcile test starts from the bootstrap state (cheaper than a
    new slapd per test)."""
    conn = slapd.admin()
    for ou in ("people", "groups"):
        conn.search(f"ou={ou},{BASE}", "(objectClass=*)", ldap3.LEVEL)
        for item in list(conn.response):
            if item["type"] == "searchResEntry":
                assert conn.delete(item["dn"]), conn.result
    conn.unbind()
    return slapd


# ---------------------------------------------------------------- helpers for reconcile


def user(name: str, uid: int, password: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "uid": uid, "gid": 100, "cn": name.title() + " Tester",
            "mail": f"{name}@example.org", "password": password, **extra}


def doc(server: Slapd, users: list[dict[str, Any]],
        groups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"base_dn": BASE, "server": server.url,
            "admin_password_file": str(server.admin_password_file),
            "users": users, "groups": groups or []}


def run_reconcile(server: Slapd, document: dict[str, Any], *args: str, mode: int = 0o600,
                  as_script: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the reconcile CLI: in-process (fast) or as the image runs it (a script)."""
    path = server.root / "desired.json"
    _write_secret(path, json.dumps(document))
    os.chmod(path, mode)
    argv = ["--desired", str(path), "--wait", "5", *args]
    if as_script:
        return subprocess.run([sys.executable, str(LDAP_DIR / "reconcile.py"), *argv],
                              capture_output=True, text=True, timeout=120, check=False)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = reconcile.main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def entry(server: Slapd, dn: str, attrs: list[str] | None = None) -> dict[str, list[Any]]:
    """Attributes of one entry read as admin (rootDN sees userPassword too)."""
    conn = server.admin()
    conn.search(dn, "(objectClass=*)", ldap3.BASE,
                attributes=attrs or ["*", "+"])
    assert len(conn.entries) == 1, (dn, conn.result)
    raw = conn.response[0]["raw_attributes"]
    conn.unbind()
    return {k: [v.decode() for v in vals] for k, vals in raw.items() if vals}


def snapshot(server: Slapd) -> dict[str, list[str]]:
    """entryCSN of every entry: any write changes it, so equal snapshots mean no write."""
    conn = server.admin()
    conn.search(BASE, "(objectClass=*)", ldap3.SUBTREE, attributes=["entryCSN"])
    out = {item["dn"]: [v.decode() for v in item["raw_attributes"]["entryCSN"]]
           for item in conn.response if item["type"] == "searchResEntry"}
    conn.unbind()
    return out


def udn(name: str) -> str:
    return f"uid={name},ou=people,{BASE}"


def gdn(name: str) -> str:
    return f"cn={name},ou=groups,{BASE}"


# ---------------------------------------------------------------- bootstrap (pure)


def _render(**over: str) -> bootstrap.BootstrapLdif:
    args = {"base_dn": BASE, "organisation": "Org", "admin_password_hash": "{ARGON2}$a$b",
            "readonly_password_hash": "{ARGON2}$c$d", "data_dir": "/var/lib/ldap",
            "run_dir": "/run/slapd"}
    args.update(over)
    return bootstrap.render_bootstrap(**args)  # type: ignore[arg-type]


def test_render_bootstrap_hardening_settings() -> None:
    ldif = _render()
    config = ldif.config
    assert "olcDisallows: bind_anon" in config
    assert config.count("olcRequires: authc") >= 2
    assert "olcPasswordHash: {ARGON2}" in config
    (module,) = [line for line in config.splitlines()
                 if line.startswith("olcModuleLoad:") and line.split()[1].endswith("}argon2")]
    assert_argon2_cost(dict(p.split("=") for p in module.split()[2:]))
    assert "olcRootPW: {ARGON2}$a$b" in config
    assert "to attrs=userPassword by anonymous auth by * none" in config
    assert f'by dn.exact="cn=readonly,{BASE}" read' in config
    for schema in ("core", "cosine", "nis", "inetorgperson"):
        assert f"include: file:///etc/ldap/schema/{schema}.ldif" in config
    assert "MD5" not in config.upper()
    assert f"dn: ou=people,{BASE}" in ldif.data and f"dn: ou=groups,{BASE}" in ldif.data
    assert "userPassword: {ARGON2}$c$d" in ldif.data
    assert "$" + "{" not in config + ldif.data  # every placeholder was rendered


@pytest.mark.parametrize("bad", ["dc=a,ou=x", "cn=admin", "dc=a\ndc=b", "dc=a)(x", "DC=a b", ""])
def test_render_bootstrap_rejects_unsafe_base_dn(bad: str) -> None:
    with pytest.raises(ValueError):
        _render(base_dn=bad)


def test_render_bootstrap_organisation_cannot_inject_ldif() -> None:
    with pytest.raises(ValueError):
        _render(organisation="Org\ndn: cn=evil")
    data = _render(organisation="Ünï: tricky, o=x").data
    assert "o:: " in data and "tricky" not in data  # base64, never raw


def test_render_bootstrap_rejects_plaintext_hash() -> None:
    with pytest.raises(ValueError):
        _render(admin_password_hash="secret")


# ---------------------------------------------------------------- bootstrap (real slapd)


@SLAPD
def test_bootstrap_is_idempotent(slapd: Slapd) -> None:
    before = {p: p.stat().st_mtime_ns for p in slapd.config_dir.rglob("*")}
    before_entries = snapshot(slapd)
    env = bootstrap_env(slapd.root, slapd.root / "missing-admin.pw", slapd.root / "missing.pw")
    result = run_bootstrap(env)
    assert result.returncode == 0, result.stderr
    assert "already initialised" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in slapd.config_dir.rglob("*")} == before
    assert snapshot(slapd) == before_entries


@SLAPD
def test_bootstrap_refuses_unknown_content_and_recovers_own_partial_state(tmp_path: Path) -> None:
    admin = _write_secret(tmp_path / "a.pw", "x-admin")
    ro = _write_secret(tmp_path / "r.pw", "x-ro")
    env = bootstrap_env(tmp_path, admin, ro)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "someone-elses.mdb").write_text("keep me")
    result = run_bootstrap(env)
    assert result.returncode == 1 and "refusing" in result.stderr
    assert (tmp_path / "data" / "someone-elses.mdb").read_text() == "keep me"
    # A marker means a previous bootstrap of ours died half-way: clean up and redo.
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / bootstrap.INCOMPLETE_MARKER).touch()
    result = run_bootstrap(env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "config" / "cn=config.ldif").exists()
    assert not (tmp_path / "config" / bootstrap.INCOMPLETE_MARKER).exists()
    assert not (tmp_path / "data" / "someone-elses.mdb").exists()


def test_bootstrap_missing_environment_fails_clearly(tmp_path: Path) -> None:
    env = {k: v for k, v in bootstrap_env(tmp_path, tmp_path / "a", tmp_path / "b").items()
           if k != "LDAP_BASE_DN"}
    result = run_bootstrap(env)
    assert result.returncode == 1 and "LDAP_BASE_DN" in result.stderr


# ---------------------------------------------------------------- access control


@SLAPD
def test_anonymous_bind_and_unauthenticated_search_refused(slapd: Slapd) -> None:
    server = ldap3.Server(slapd.url, get_info=ldap3.NONE)
    anon = ldap3.Connection(server, raise_exceptions=False)  # anonymous simple bind
    assert not anon.bind()
    assert anon.result["result"] == 48  # inappropriateAuthentication: bind_anon disallowed
    anon.unbind()
    unbound = ldap3.Connection(server, raise_exceptions=False)
    unbound.open()  # no bind at all, straight to a search
    unbound.search(BASE, "(objectClass=*)", ldap3.SUBTREE)
    assert unbound.entries == []
    assert unbound.result["result"] == 53  # unwillingToPerform (olcRequires authc)
    assert "authentication required" in unbound.result["message"]
    unbound.unbind()


@SLAPD
def test_admin_and_readonly_bind_wrong_password_refused(slapd: Slapd) -> None:
    assert slapd.can_bind(f"cn=admin,{BASE}", slapd.admin_password)
    assert slapd.can_bind(f"cn=readonly,{BASE}", slapd.readonly_password)
    # bytes: sent raw (str would be SASLprep'd); the file's trailing newline is not part of it
    assert not slapd.can_bind(f"cn=admin,{BASE}", (slapd.admin_password + "\n").encode())
    assert not slapd.can_bind(f"cn=readonly,{BASE}", slapd.admin_password)
    assert not slapd.can_bind(f"cn=admin,{BASE}", "wrong")


@SLAPD
def test_readonly_reads_everything_but_userpassword_and_cannot_write(slapd: Slapd) -> None:
    conn = slapd.readonly()
    conn.search(BASE, "(objectClass=*)", ldap3.SUBTREE, attributes=["*"])
    dns = {e.entry_dn for e in conn.entries}
    assert {BASE, f"ou=people,{BASE}", f"ou=groups,{BASE}", f"cn=readonly,{BASE}"} <= dns
    conn.search(f"cn=readonly,{BASE}", "(objectClass=*)", ldap3.BASE,
                attributes=["userPassword", "cn"])
    assert not conn.response[0]["raw_attributes"].get("userPassword")
    assert conn.response[0]["raw_attributes"]["cn"] == [b"readonly"]
    # ...and cannot even test it with a filter (no compare/search access).
    conn.search(BASE, "(userPassword=*)", ldap3.SUBTREE)
    assert conn.entries == []
    assert not conn.add(f"uid=x,ou=people,{BASE}", ["account"], {"uid": "x"})
    assert conn.result["result"] == 50  # insufficientAccessRights
    conn.unbind()


def assert_argon2_cost(params: dict[str, str]) -> None:
    """OWASP's minimum cost for Argon2: 19 MiB of memory, 2 passes, 1 lane (literal numbers)."""
    assert int(params["m"]) >= 19456 and int(params["t"]) >= 2 and int(params["p"]) >= 1, params


def argon2_params(stored: str) -> dict[str, str]:
    """The cost a stored hash was made with: {ARGON2}$argon2id$v=19$m=..,t=..,p=..$salt$hash."""
    scheme, variant, _version, params, _salt, _digest = stored.split("$")
    # Debian 12's slapd argon2 module (libargon2) makes argon2i; argon2id would be preferred.
    assert scheme == "{ARGON2}" and variant in ("argon2i", "argon2id"), stored[:20]
    return dict(p.split("=") for p in params.split(","))


@SLAPD
def test_stored_hashes_are_argon2_never_md5(slapd: Slapd) -> None:
    stored = entry(slapd, f"cn=readonly,{BASE}", ["userPassword"])["userPassword"]
    assert len(stored) == 1 and stored[0].startswith("{ARGON2}$argon2")
    assert_argon2_cost(argon2_params(stored[0]))  # the hash slapd made, not our constant
    mdb_ldif = (slapd.config_dir / "cn=config" / "olcDatabase={1}mdb.ldif").read_text()
    root_pw = [line for line in mdb_ldif.replace("\n ", "").splitlines()  # LDIF unfolding
               if line.startswith("olcRootPW")]
    assert len(root_pw) == 1 and root_pw[0].startswith("olcRootPW:: ")
    root_hash = base64.b64decode(root_pw[0].split(" ", 1)[1]).decode()
    assert_argon2_cost(argon2_params(root_hash))
    everything = "".join(p.read_text() for p in slapd.config_dir.rglob("*.ldif"))
    assert slapd.admin_password not in everything
    assert "MD5}" not in everything


@SLAPD
def test_healthcheck_script(slapd: Slapd) -> None:
    script = str(LDAP_DIR / "healthcheck.sh")
    env = {**os.environ, "LDAP_HEALTHCHECK_URL": slapd.ldapi_url, "LDAP_BASE_DN": BASE}
    ok = subprocess.run(["sh", script], env=env, capture_output=True, timeout=20, check=False)
    assert ok.returncode == 0, ok.stderr
    env["LDAP_BASE_DN"] = "dc=other,dc=test"
    bad = subprocess.run(["sh", script], env=env, capture_output=True, timeout=20, check=False)
    assert bad.returncode != 0


def test_entrypoint_runs_other_commands_verbatim() -> None:
    result = subprocess.run(["sh", str(LDAP_DIR / "entrypoint.sh"), "echo", "one-shot"],
                            capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0 and result.stdout == "one-shot\n"


# ---------------------------------------------------------------- reconcile


@SLAPD
def test_reconcile_creates_then_is_a_noop(fresh: Slapd) -> None:
    users = [user("alice", 123456, "alice-pw-1"), user("bob", 123457, "bob-pw-1", mail=None)]
    del users[1]["mail"]
    groups = [{"name": "physics", "gid": 234567, "members": ["alice"]},
              {"name": "empty", "gid": 234568}]
    # As the image runs it: a script next to desired.py, not an imported package module.
    first = summary(run_reconcile(fresh, doc(fresh, users, groups), "--json", as_script=True))
    assert first["users"] == {"created": 2, "updated": 0, "disabled": 0, "unchanged": 0}
    assert first["groups"] == {"created": 2, "updated": 0, "disabled": 0, "unchanged": 0}

    alice = entry(fresh, udn("alice"))
    assert {"inetOrgPerson", "posixAccount"} <= set(alice["objectClass"])
    assert alice["uidNumber"] == ["123456"] and alice["gidNumber"] == ["100"]
    assert alice["homeDirectory"] == ["/home/alice"] and alice["loginShell"] == ["/bin/bash"]
    assert alice["cn"] == ["Alice Tester"] and alice["sn"] == ["Tester"]
    assert alice["mail"] == ["alice@example.org"] and "mail" not in entry(fresh, udn("bob"))
    assert alice["description"] == [reconcile.MANAGED]
    assert_argon2_cost(argon2_params(alice["userPassword"][0]))  # hashed by slapd itself
    physics = entry(fresh, gdn("physics"))
    assert "posixGroup" in physics["objectClass"] and physics["gidNumber"] == ["234567"]
    assert physics["memberUid"] == ["alice"]
    assert fresh.can_bind(udn("alice"), "alice-pw-1")
    assert not fresh.can_bind(udn("alice"), "alice-pw-2")
    assert not fresh.can_bind(udn("alice"), "bob-pw-1")
    assert fresh.can_bind(udn("bob"), "bob-pw-1")

    before = snapshot(fresh)
    second = summary(run_reconcile(fresh, doc(fresh, users, groups), "--json"))
    assert second["users"] == {"created": 0, "updated": 0, "disabled": 0, "unchanged": 2}
    assert second["groups"] == {"created": 0, "updated": 0, "disabled": 0, "unchanged": 2}
    assert snapshot(fresh) == before  # not a single write, password hashes included


@SLAPD
def test_reconcile_updates_attributes_membership_and_resets_passwords(fresh: Slapd) -> None:
    users = [user("alice", 2001, "a-pw"), user("bob", 2002, "b-pw")]
    groups = [{"name": "physics", "gid": 3001, "members": ["alice"]}]
    summary(run_reconcile(fresh, doc(fresh, users, groups), "--json"))
    hash_bob = entry(fresh, udn("bob"), ["userPassword"])["userPassword"]
    hash_alice = entry(fresh, udn("alice"), ["userPassword"])["userPassword"]

    users[0].update(cn="Alice Q. Smith", mail="alice.smith@example.org", password="a-pw-new")
    groups[0]["members"] = ["bob"]
    result = run_reconcile(fresh, doc(fresh, users, groups), "--json")
    counts = summary(result)
    assert counts["users"] == {"created": 0, "updated": 1, "disabled": 0, "unchanged": 1}
    assert counts["groups"]["updated"] == 1
    assert "user alice: updated (cn, sn, mail, password)" in result.stdout
    assert "group physics: updated (+bob, -alice)" in result.stdout
    alice = entry(fresh, udn("alice"))
    assert alice["cn"] == ["Alice Q. Smith"] and alice["sn"] == ["Smith"]
    assert alice["mail"] == ["alice.smith@example.org"]
    assert alice["userPassword"] != hash_alice
    assert alice["userPassword"][0].startswith("{ARGON2}$argon2")
    assert fresh.can_bind(udn("alice"), "a-pw-new")
    assert not fresh.can_bind(udn("alice"), "a-pw")
    assert entry(fresh, udn("bob"), ["userPassword"])["userPassword"] == hash_bob
    assert entry(fresh, gdn("physics"))["memberUid"] == ["bob"]


@SLAPD
def test_reconcile_disables_then_reenables(fresh: Slapd) -> None:
    users = [user("alice", 2001, "a-pw"), user("bob", 2002, "b-pw")]
    groups = [{"name": "physics", "gid": 3001, "members": ["alice", "bob"]},
              {"name": "chem", "gid": 3002, "members": ["bob"]}]
    summary(run_reconcile(fresh, doc(fresh, users, groups), "--json"))

    # bob leaves the config (and so every group); chem leaves the config too.
    counts = summary(run_reconcile(
        fresh, doc(fresh, users[:1], [{"name": "physics", "gid": 3001, "members": ["alice"]}]),
        "--json"))
    assert counts["users"] == {"created": 0, "updated": 0, "disabled": 1, "unchanged": 1}
    assert counts["groups"] == {"created": 0, "updated": 1, "disabled": 1, "unchanged": 0}
    bob = entry(fresh, udn("bob"))
    assert bob["uidNumber"] == ["2002"]  # entry and uid kept: files stay attributable
    assert "userPassword" not in bob
    assert set(bob["description"]) == {reconcile.MANAGED, reconcile.DISABLED}
    assert not fresh.can_bind(udn("bob"), "b-pw")
    assert entry(fresh, gdn("physics"))["memberUid"] == ["alice"]
    chem = entry(fresh, gdn("chem"))
    assert "memberUid" not in chem and reconcile.DISABLED in chem["description"]

    before = snapshot(fresh)
    again = summary(run_reconcile(
        fresh, doc(fresh, users[:1], [{"name": "physics", "gid": 3001, "members": ["alice"]}]),
        "--json"))
    assert again["users"]["disabled"] == 0 and again["groups"]["disabled"] == 0
    assert snapshot(fresh) == before

    users[1]["password"] = "b-pw-2"
    result = run_reconcile(fresh, doc(fresh, users, groups), "--json")
    counts = summary(result)
    assert counts["users"] == {"created": 0, "updated": 1, "disabled": 0, "unchanged": 1}
    assert "user bob: updated (re-enabled, password)" in result.stdout
    bob = entry(fresh, udn("bob"))
    assert bob["description"] == [reconcile.MANAGED] and bob["uidNumber"] == ["2002"]
    assert fresh.can_bind(udn("bob"), "b-pw-2")
    assert entry(fresh, gdn("chem"))["memberUid"] == ["bob"]
    assert entry(fresh, gdn("chem"))["description"] == [reconcile.MANAGED]


@SLAPD
def test_reconcile_refuses_uid_and_gid_changes_and_changes_nothing(fresh: Slapd) -> None:
    users = [user("alice", 2001, "a-pw"), user("bob", 2002, "b-pw")]
    groups = [{"name": "physics", "gid": 3001, "members": ["alice"]}]
    summary(run_reconcile(fresh, doc(fresh, users, groups), "--json"))
    before = snapshot(fresh)
    users[0]["uid"] = 2999
    users[1]["cn"] = "Changed Name"  # a legal change in the same run must not be applied
    groups[0]["gid"] = 3999
    result = run_reconcile(fresh, doc(fresh, users, groups))
    assert result.returncode == 1
    assert "user alice: uidNumber in LDAP is 2001 but the config declares 2999" in result.stderr
    assert "group physics: gidNumber in LDAP is 3001" in result.stderr
    assert "nothing was changed" in result.stderr
    assert "updated" not in result.stdout  # no claim of a change that was not made
    assert snapshot(fresh) == before


@SLAPD
def test_reconcile_refuses_uid_taken_by_a_disabled_user(fresh: Slapd) -> None:
    summary(run_reconcile(fresh, doc(fresh, [user("alice", 2001, "a-pw")]), "--json"))
    summary(run_reconcile(fresh, doc(fresh, []), "--json"))  # alice disabled, uid reserved
    result = run_reconcile(fresh, doc(fresh, [user("carol", 2001, "c-pw")]))
    assert result.returncode == 1 and "user carol: uid 2001 is already used" in result.stderr
    assert not fresh.admin().search(udn("carol"), "(objectClass=*)", ldap3.BASE)


def _colliding_pair() -> tuple[str, str]:
    """Two generated names whose name-derived uids (the first choice) are equal."""
    owner: dict[int, str] = {}
    for i in range(100_000):
        uid = desired.probe_uid(f"s{i}", 0)
        if uid in owner:
            return owner[uid], f"s{i}"
        owner[uid] = f"s{i}"
    raise AssertionError("no collision")


@SLAPD
def test_reconcile_assigns_free_uids_that_never_move(fresh: Slapd) -> None:
    """Users without a uid: LDAP keeps each assignment; collisions need no manual step."""
    a, b = _colliding_pair()

    def auto(name: str) -> dict[str, Any]:
        return {k: v for k, v in user(name, 0, f"{name}-pw").items() if k != "uid"}

    def uid_number(name: str) -> int:
        return int(entry(fresh, udn(name), ["uidNumber"])["uidNumber"][0])

    summary(run_reconcile(fresh, doc(fresh, [auto(a), user("carol", 5001, "c-pw")]), "--json"))
    assert uid_number(a) == desired.probe_uid(a, 0)  # the uid earlier versions gave
    # b collides with a; declared first, it must still not take a's number.
    counts = summary(run_reconcile(fresh, doc(fresh, [auto(b), auto(a), auto("carol")]), "--json"))
    assert counts["users"]["created"] == 1
    assert uid_number(a) == desired.probe_uid(a, 0)
    assert uid_number(b) == desired.probe_uid(b, 1)
    assert uid_number("carol") == 5001  # its explicit uid left the config; LDAP remembers it
    # a leaves (disabled, uid reserved), then a newcomer and a's return: nothing moves.
    summary(run_reconcile(fresh, doc(fresh, [auto(b)]), "--json"))
    summary(run_reconcile(fresh, doc(fresh, [auto("dave"), auto(a), auto(b)]), "--json"))
    assert (uid_number(a), uid_number(b)) == (desired.probe_uid(a, 0), desired.probe_uid(b, 1))
    assert fresh.can_bind(udn(a), f"{a}-pw")
    numbers = [uid_number(n) for n in (a, b, "carol", "dave")]
    assert len(set(numbers)) == 4


@SLAPD
def test_reconcile_never_touches_unmanaged_entries(fresh: Slapd) -> None:
    admin = fresh.admin()
    assert admin.add(udn("mallory"), ["inetOrgPerson", "posixAccount"],
                     {"cn": "M", "sn": "M", "uid": "mallory", "uidNumber": 5000,
                      "gidNumber": 100, "homeDirectory": "/home/mallory"})
    assert admin.add(gdn("staff"), ["posixGroup"], {"cn": "staff", "gidNumber": 5000,
                                                      "memberUid": ["mallory"]})
    before = snapshot(fresh)
    # Not declared: left alone (not disabled).
    counts = summary(run_reconcile(fresh, doc(fresh, []), "--json"))
    assert counts["users"]["disabled"] == 0 and counts["groups"]["disabled"] == 0
    assert snapshot(fresh) == before
    # Declared with the same name: refused, never taken over.
    result = run_reconcile(fresh, doc(fresh, [user("mallory", 5000, "m-pw")],
                                      [{"name": "staff", "gid": 5000}]))
    assert result.returncode == 1
    assert "user mallory:" in result.stderr and "not managed" in result.stderr
    assert "group staff:" in result.stderr
    assert snapshot(fresh) == before


@pytest.mark.parametrize("bad_name", ["*", ")(uid=*", "a,ou=x", "Alice", "a b", "1abc",
                                      "uid=x", "a" * 33, ""])
@SLAPD
def test_reconcile_refuses_injection_shaped_names(fresh: Slapd, bad_name: str) -> None:
    before = snapshot(fresh)
    for document in (doc(fresh, [user(bad_name, 2001, "pw")]),
                     doc(fresh, [], [{"name": bad_name, "gid": 3001}]),
                     doc(fresh, [user("ok", 2001, "pw")],
                         [{"name": "g", "gid": 3001, "members": [bad_name]}])):
        result = run_reconcile(fresh, document)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "invalid input" in result.stderr
    assert snapshot(fresh) == before


@SLAPD
def test_reconcile_stores_filter_and_dn_metacharacters_literally(fresh: Slapd) -> None:
    cn = "x)(uid=*)(cn=*, ou=evil\\ *"
    summary(run_reconcile(fresh, doc(fresh, [user("eve", 2001, "e-pw", cn=cn)]), "--json"))
    conn = fresh.readonly()
    conn.search(f"ou=people,{BASE}", f"(cn={escape_filter_chars(cn)})", ldap3.LEVEL,
                attributes=["cn", "uid"])
    assert [e.entry_dn for e in conn.entries] == [udn("eve")]
    conn.search(BASE, "(objectClass=*)", ldap3.SUBTREE)
    assert not any("evil" in e.entry_dn for e in conn.entries)
    bad_mail = run_reconcile(fresh, doc(fresh, [user("eve", 2001, "e-pw", mail="a,ou=x")]))
    assert bad_mail.returncode == 2


@SLAPD
def test_reconcile_refuses_world_readable_desired_file(fresh: Slapd) -> None:
    result = run_reconcile(fresh, doc(fresh, [user("alice", 2001, "a-pw")]), mode=0o644)
    assert result.returncode == 2 and "mode 600" in result.stderr
    assert not fresh.can_bind(udn("alice"), "a-pw")


@SLAPD
def test_reconcile_dry_run_changes_nothing(fresh: Slapd) -> None:
    before = snapshot(fresh)
    result = run_reconcile(fresh, doc(fresh, [user("alice", 2001, "a-pw")]), "--dry-run")
    assert result.returncode == 0
    assert "would user alice: created" in result.stdout
    assert snapshot(fresh) == before


@SLAPD
def test_reconcile_bad_admin_password_is_an_ldap_error(fresh: Slapd) -> None:
    _write_secret(fresh.root / "wrong.pw", "not-the-admin-password")
    document = doc(fresh, [user("alice", 2001, "a-pw")])
    document["admin_password_file"] = str(fresh.root / "wrong.pw")
    result = run_reconcile(fresh, document)
    assert result.returncode == 3 and "admin bind" in result.stderr
    assert "not-the-admin-password" not in result.stdout + result.stderr


@SLAPD
def test_no_password_is_ever_printed_or_logged(fresh: Slapd) -> None:
    users = [user("alice", 2001, "Sup3r-s3cret-alice"), user("bob", 2002, "Sup3r-s3cret-bob")]
    outputs = [run_reconcile(fresh, doc(fresh, users)) for _ in range(2)]
    users[0]["password"] = "Sup3r-s3cret-alice-2"
    outputs.append(run_reconcile(fresh, doc(fresh, users)))
    outputs.append(run_reconcile(fresh, doc(fresh, users[:1])))
    assert all(r.returncode == 0 for r in outputs)
    text = "".join(r.stdout + r.stderr for r in outputs) + fresh.log.read_text(errors="replace")
    assert "BIND" in fresh.log.read_text(errors="replace")  # the log is really being written
    for secret in ("Sup3r-s3cret", fresh.admin_password, fresh.readonly_password, "ARGON2"):
        assert secret not in text


@SLAPD
def test_user_cannot_read_other_passwords_or_write(fresh: Slapd) -> None:
    summary(run_reconcile(fresh, doc(fresh, [user("alice", 2001, "a-pw"),
                                             user("bob", 2002, "b-pw")]), "--json"))
    conn = fresh.conn(udn("alice"), "a-pw")
    conn.search(f"ou=people,{BASE}", "(objectClass=posixAccount)", ldap3.LEVEL,
                attributes=["userPassword", "uidNumber"])
    assert len(conn.response) == 2
    assert all(not item["raw_attributes"].get("userPassword") for item in conn.response)
    assert all(item["raw_attributes"]["uidNumber"] for item in conn.response)
    assert not conn.modify(udn("alice"), {"userPassword": [(ldap3.MODIFY_REPLACE, ["x"])]})
    assert not conn.modify(udn("bob"), {"cn": [(ldap3.MODIFY_REPLACE, ["x"])]})
    conn.unbind()


# ---------------------------------------------------------------- desired_state (pure)


def test_desired_state_builds_sorted_document_with_defaults() -> None:
    result = desired.desired_state(
        BASE,
        [{"name": "zed", "uid": 2002, "password": "z"},
         {"name": "amy", "uid": 2001, "gid": 100, "cn": "Amy A", "mail": "amy@x.org",
          "password": "a"}],
        [{"name": "physics", "gid": 3001, "members": ["zed", "amy", "zed"]}],
    )
    assert result == {
        "base_dn": BASE, "server": "ldap://ldap:389",
        "admin_password_file": desired.DEFAULT_ADMIN_PASSWORD_FILE,
        "users": [
            {"name": "amy", "uid": 2001, "gid": 100, "cn": "Amy A", "mail": "amy@x.org",
             "password": "a"},
            {"name": "zed", "uid": 2002, "gid": 100, "cn": "zed", "password": "z"},
        ],
        "groups": [{"name": "physics", "gid": 3001, "members": ["amy", "zed"]}],
    }
    json.dumps(result)  # JSON-ready
    assert desired.parse_desired(result).users[0].name == "amy"


@pytest.mark.parametrize(("users", "groups", "message"), [
    ([{"name": ")(uid=*", "uid": 2001, "password": "p"}], [], "user name"),
    ([{"name": "a", "uid": True, "password": "p"}], [], "user a: uid"),
    ([{"name": "a", "uid": 0, "password": "p"}], [], "user a: uid"),
    ([{"name": "a", "uid": 2001, "password": ""}], [], "user a: password"),
    ([{"name": "a", "uid": 2001, "password": "p", "cn": "x\ny"}], [], "user a: cn"),
    ([{"name": "a", "uid": 2001, "password": "p", "shell": "/bin/sh"}], [], "unknown keys"),
    ([{"name": "a", "uid": 2001, "password": "p"}, {"name": "b", "uid": 2001, "password": "p"}],
     [], "duplicate uid"),
    ([{"name": "a", "uid": 2001, "password": "p"}],
     [{"name": "g", "gid": 3001, "members": ["ghost"]}], "group g: members not declared"),
    ([], [{"name": "g", "gid": 3001, "members": "a"}], "group g: members"),
    ([], [{"name": "g", "gid": 3001}, {"name": "h", "gid": 3001}], "duplicate group gid"),
])
def test_desired_state_rejects_invalid_input(users: list[Any], groups: list[Any],
                                             message: str) -> None:
    with pytest.raises(desired.DesiredStateError, match=message.replace("(", r"\(")
                       .replace(")", r"\)").replace("*", r"\*")):
        desired.desired_state(BASE, users, groups)


def test_desired_state_rejects_bad_base_dn_and_server() -> None:
    with pytest.raises(desired.DesiredStateError, match="base_dn"):
        desired.desired_state("dc=x,ou=y", [], [])
    with pytest.raises(desired.DesiredStateError, match="server"):
        desired.desired_state(BASE, [], [], server="http://ldap")


def test_user_repr_hides_password() -> None:
    parsed = desired.parse_user({"name": "a", "uid": 2001, "password": "hunter2-secret"})
    assert "hunter2" not in repr(parsed) and "hunter2" not in str(parsed)


@SLAPD
def test_unicode_passwords_are_stable_and_unpreparable_ones_refused(fresh: Slapd) -> None:
    # ldap3 SASLprep-maps NBSP to space and NFKC-folds the ligature, on set and on bind alike.
    pw = "pässwörd\u00a0\ufb01x"
    users = [user("alice", 2001, pw)]
    summary(run_reconcile(fresh, doc(fresh, users), "--json"))
    assert fresh.can_bind(udn("alice"), pw)
    before = snapshot(fresh)
    assert summary(run_reconcile(fresh, doc(fresh, users), "--json"))["users"]["unchanged"] == 1
    assert snapshot(fresh) == before
    users[0]["password"] = "Zq\ue000hush"  # SASLprep prohibits private-use code points
    result = run_reconcile(fresh, doc(fresh, users))
    assert result.returncode == 2 and "user alice: password unusable" in result.stderr
    assert "hush" not in result.stderr


# ---------------------------------------------------------------- image files (static)


def _instructions(dockerfile: str) -> list[str]:
    text = dockerfile.replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_contract() -> None:
    lines = _instructions((LDAP_DIR / "Dockerfile").read_text())
    froms = [line for line in lines if line.upper().startswith("FROM ")]
    assert len(froms) == 1 and froms[0].startswith("FROM debian:12.")
    assert froms[0].endswith("-slim") and "latest" not in froms[0]
    run = " ".join(line for line in lines if line.upper().startswith("RUN "))
    for package in ("slapd", "ldap-utils", "python3", "python3-ldap3"):
        assert f" {package} " in f" {run} "
    assert "slapd/no_configuration boolean true" in run
    assert not any(line.upper().startswith(("VOLUME", "ARG", "USER")) for line in lines)
    assert any(line.startswith("HEALTHCHECK") and "healthcheck.sh" in line for line in lines)
    copied = " ".join(line for line in lines if line.upper().startswith("COPY "))
    # Every file the entrypoint, the healthcheck and the scripts' imports need is in the image.
    for name in ("desired.py", "bootstrap.py", "converge.py", "reconcile.py", "entrypoint.sh",
                 "healthcheck.sh", "ldif/"):
        assert name in copied
    assert 'ENTRYPOINT ["/opt/jhc/entrypoint.sh"]' in lines and 'CMD ["slapd"]' in lines


def test_entrypoint_drops_privileges_and_serves_ldap_and_ldapi() -> None:
    text = (LDAP_DIR / "entrypoint.sh").read_text().replace("\\\n", " ")
    exec_line = next(line for line in text.splitlines() if "exec /usr/sbin/slapd" in line)
    assert "-u openldap -g openldap" in exec_line
    assert '-h "ldap:/// ldapi:///"' in exec_line and "-F /etc/ldap/slapd.d" in exec_line
    assert text.index("bootstrap.py") < text.index("exec /usr/sbin/slapd")
    # the passwords are set at every start, after a bootstrap and before slapd runs
    assert text.index("bootstrap.py") < text.index("converge.py") < text.index("exec /usr/sbin")


# ---------------------------------------------------------------- converge (every start)


def restart_slapd(server: Slapd, admin_password: str, readonly_password: str) -> Slapd:
    """slapd again on the same config and data, expecting the given passwords to work."""
    port = _free_port()
    url = f"ldap://127.0.0.1:{port}"
    with open(server.log, "ab") as log_fh:
        proc = subprocess.Popen(
            ["slapd", "-d", "stats", "-h", f"{url}/ {server.ldapi_url}",
             "-F", str(server.config_dir)], stdout=log_fh, stderr=subprocess.STDOUT)
    again = Slapd(server.root, url, server.ldapi_url, admin_password, readonly_password,
                  server.admin_password_file, server.log, proc)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _answers(again):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_slapd(again)
            raise AssertionError(f"slapd did not come back: {server.log.read_text()[-3000:]}")
        time.sleep(0.1)
    return again


def _answers(server: Slapd) -> bool:
    try:
        return server.can_bind("cn=nobody,dc=jhc,dc=test", "x") is False and bool(
            subprocess.run(["ldapsearch", "-Q", "-LLL", "-Y", "EXTERNAL", "-H", server.ldapi_url,
                            "-b", "", "-s", "base", "namingContexts"], capture_output=True,
                           timeout=10, check=False).returncode == 0)
    except ldap3.core.exceptions.LDAPException:
        return False


def root_password_hash(server: Slapd) -> str:
    """olcRootPW of the data database, read offline from cn=config."""
    out = subprocess.run(["slapcat", "-n", "0", "-F", str(server.config_dir),
                          "-a", "(olcDatabase={1}mdb)"], capture_output=True, text=True,
                         timeout=30, check=True).stdout.replace("\n ", "")
    value = next(line for line in out.splitlines() if line.startswith("olcRootPW"))
    if value.startswith("olcRootPW:: "):
        return base64.b64decode(value.split(" ", 1)[1]).decode()
    return value.split(" ", 1)[1]


@SLAPD
def test_converge_sets_regenerated_admin_and_readonly_passwords(tmp_path: Path) -> None:
    """A directory bootstrapped with one pair of secrets accepts a new pair after a restart
    through converge.py, and only the new pair; the tree is untouched (issue 7, point 1)."""
    server = start_slapd(tmp_path)
    alice = user("alice", 4001, "alice-pw-1")
    assert summary(run_reconcile(server, doc(server, [alice]), "--json"))["users"]["created"] == 1
    before = snapshot(server)
    stop_slapd(server)
    root_pw_before = root_password_hash(server)
    new_admin, new_ro = "adm2-" + secrets.token_urlsafe(12), "ro2-" + secrets.token_urlsafe(12)
    _write_secret(server.admin_password_file, new_admin + "\n")
    _write_secret(server.root / "readonly.pw", new_ro)
    env = bootstrap_env(server.root, server.admin_password_file, server.root / "readonly.pw")
    for script in ("bootstrap.py", "converge.py"):  # what the entrypoint runs, in that order
        result = subprocess.run([sys.executable, str(LDAP_DIR / script)], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        for secret_value in (new_admin, new_ro, server.admin_password):
            assert secret_value not in result.stdout + result.stderr
    again = restart_slapd(server, new_admin, new_ro)
    try:
        assert again.can_bind(f"cn=admin,{BASE}", new_admin)
        assert again.can_bind(f"cn=readonly,{BASE}", new_ro)
        assert not again.can_bind(f"cn=admin,{BASE}", server.admin_password)
        assert not again.can_bind(f"cn=readonly,{BASE}", server.readonly_password)
        assert again.can_bind(f"uid=alice,ou=people,{BASE}", "alice-pw-1")
        after = snapshot(again)
        assert after.pop(f"cn=readonly,{BASE}") != before.pop(f"cn=readonly,{BASE}")
        assert after == before  # nothing but the read-only account's password was written
        root_pw = root_password_hash(again)
        assert root_pw.startswith("{ARGON2}$argon2") and root_pw != root_pw_before
    finally:
        stop_slapd(again)


def test_converge_refuses_a_directory_that_was_never_bootstrapped(tmp_path: Path) -> None:
    admin = _write_secret(tmp_path / "a.pw", "x-admin")
    ro = _write_secret(tmp_path / "r.pw", "x-ro")
    result = subprocess.run([sys.executable, str(LDAP_DIR / "converge.py")],
                            env=bootstrap_env(tmp_path, admin, ro), capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 1 and "no complete configuration" in result.stderr
