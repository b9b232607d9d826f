"""A deployment survives the loss of every generated secret (issue 7, point 1).

The platform runs, users log in, a user's server writes a file; then every service is stopped and
started again on the SAME data (LDAP config and database, the Postgres cluster, the homes) with
ALL-NEW secrets: Postgres and LDAP passwords, the proxy token, the hub's cookie secret and crypt
key, and the users' generated passwords (as after `pulumi destroy` and `up` without protection,
or a new stack on a kept volume). The services start through the project's convergence files,
the same ones the images run (services/postgres/entrypoint.sh, services/ldap/bootstrap.py and
converge.py), on this machine's slapd and PostgreSQL. The user's container keeps running, as it
does when the platform's services are replaced.

Fails without the convergence: Postgres refuses the hub, the reconcile cannot bind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import docker
import ldap3
import psycopg2
import pytest
import stack

REPO = Path(__file__).resolve().parents[2]
PG_IMAGE_DIR = REPO / "services" / "postgres"

#: Users of their own (their containers are jupyter-<name>: no clash with the session platform).
CONFIG: dict[str, object] = {
    "groups": [{"name": "optics"}, {"name": "pupils"}],
    "users": [
        {"name": "sam", "fullName": "Sam Admin", "groups": ["optics"], "admin": True},
        {"name": "tess", "fullName": "Tess Writer", "groups": ["optics"]},
        {"name": "uma", "groups": ["pupils"]},
    ],
    "allowedGroups": ["optics", "pupils"],
    "images": [{"name": "minimal", "displayName": "Minimal Python", "path": "minimal"}],
    "memLimit": "512M",
    "cpuLimit": "0.5",
    "cullIdleTimeout": 3600,
}


def pg_major_bin() -> tuple[str, Path]:
    versions = sorted(stack.PG_BIN_ROOT.glob("*/bin"), key=lambda p: int(p.parent.name))
    return versions[-1].parent.name, versions[-1]


def restart_postgres(old: stack.Postgres, password: str) -> stack.Postgres:
    """Stop the cluster (keeping its files) and start it again through the image's entrypoint
    with a new password file; the official entrypoint's part is the server itself."""
    subprocess.run(["runuser", "-u", "postgres", "--", stack._pg_bin("pg_ctl"), "-D",
                    str(old.root / "data"), "-m", "fast", "-w", "stop"],
                   capture_output=True, timeout=60, check=True)
    major, binaries = pg_major_bin()
    pw_file = old.root / "postgres-password"
    stack.write_secret(pw_file, password)
    shutil.chown(pw_file, "postgres", "postgres")
    port = stack.free_port()
    env = {"PATH": f"{binaries}:/usr/bin:/bin", "PGDATA": str(old.root / "data"),
           "PG_MAJOR": major, "POSTGRES_USER": stack.DB_NAME,
           "POSTGRES_PASSWORD_FILE": str(pw_file), "JHC_POSTGRES_LIBEXEC": str(PG_IMAGE_DIR),
           "JHC_UPSTREAM_ENTRYPOINT": "env"}
    log = old.root / "postgres-restarted.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "env", "-i",
             *[f"{k}={v}" for k, v in env.items()], "bash", str(PG_IMAGE_DIR / "entrypoint.sh"),
             "postgres", "-c", "listen_addresses=127.0.0.1", "-p", str(port),
             "-k", str(old.socket_dir), "-c", "fsync=off"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = stack.Postgres(old.root, port, old.user, password, log)

    def up() -> bool:
        if proc.poll() is not None:
            raise stack.StackError(f"postgres exited {proc.returncode}: {stack.tail(log)}")
        try:
            psycopg2.connect(host="127.0.0.1", port=port, user=old.user, dbname=stack.DB_NAME,
                             password=password, connect_timeout=3).close()
        except psycopg2.OperationalError as err:
            if "password authentication failed" in str(err):
                raise stack.StackError("the new password was refused") from None
            return False
        return True

    stack.wait_until(up, 60, "postgres through the image entrypoint")
    return server


def restart_slapd(old: stack.Slapd, admin_password: str, readonly_password: str) -> stack.Slapd:
    """Stop slapd and start it as the image's entrypoint does (bootstrap.py, converge.py, slapd)
    on the same config and database, with new password files."""
    old.stop()
    root = old.root
    admin_file = stack.write_secret(root / "admin.pw", admin_password)
    ro_file = stack.write_secret(root / "readonly.pw", readonly_password)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "LDAP_BASE_DN": old.base_dn, "LDAP_ORGANISATION": "ignored on an existing directory",
           "LDAP_ADMIN_PASSWORD_FILE": str(admin_file), "LDAP_READONLY_PASSWORD_FILE": str(ro_file),
           "LDAP_CONFIG_DIR": str(root / "config"), "LDAP_DATA_DIR": str(root / "data"),
           "LDAP_RUN_DIR": str(root / "run")}
    for script in ("bootstrap.py", "converge.py"):  # services/ldap/entrypoint.sh's order
        result = subprocess.run([sys.executable, str(stack.LDAP_DIR / script)], env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise stack.StackError(f"LDAP {script} failed: {result.stdout}{result.stderr}")
    port = stack.free_port()
    ldapi = "ldapi://" + urllib.parse.quote(str(root / "run" / "ldapi"), safe="")
    log = root / "slapd-restarted.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["slapd", "-d", "stats", "-h", f"ldap://127.0.0.1:{port}/ {ldapi}",
             "-F", str(root / "config")], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    server = stack.Slapd(root, old.base_dn, port, admin_password, admin_file, readonly_password,
                         log, proc)

    def ready() -> bool:
        if proc.poll() is not None:
            raise stack.StackError(f"slapd exited {proc.returncode}: {stack.tail(log)}")
        with contextlib.suppress(ldap3.core.exceptions.LDAPException):
            conn = server.connection(f"cn=readonly,{old.base_dn}", readonly_password)
            ok = conn.bound
            conn.unbind()
            return ok
        return False

    stack.wait_until(ready, 30, "slapd with the new read-only password")
    return server


def restart_hub(platform: stack.Platform, root: Path) -> stack.Hub:
    """A new proxy (new token) and a hub with new cookie secret and crypt key, on the hub's old
    port: the running user server keeps calling the hub API there."""
    port = platform.hub.port
    proxy = stack.start_proxy(root, port)
    try:
        env, _, _ = stack.hub_env(platform.settings, root=root, network=platform.network,
                                  proxy=proxy, ldap=platform.ldap, postgres=platform.postgres,
                                  image=platform.image, hub_port=port)
        hub = stack.Hub(root, env, port, proxy, root / "hub.log")
        hub.start()
    except Exception:
        proxy.stop()
        raise
    return hub


def ldap_entries(server: stack.Slapd) -> dict[str, dict[str, list[str]]]:
    """Every entry with its attributes except passwords and operational ones."""
    conn = server.admin()
    assert conn.bound, conn.result
    conn.search(server.base_dn, "(objectClass=*)", ldap3.SUBTREE, attributes=[ldap3.ALL_ATTRIBUTES])
    out = {}
    for item in conn.response:
        if item["type"] == "searchResEntry":
            out[item["dn"]] = {k: sorted(str(v) for v in vals) for k, vals in
                               item["raw_attributes"].items() if k != "userPassword"}
    conn.unbind()
    return out


def login(hub_url: str, name: str, password: str) -> stack.Browser | None:
    browser = stack.Browser(hub_url)
    return browser if browser.login(name, password).status_code == 302 else None


@pytest.fixture
def deployed(docker_engine: docker.DockerClient, notebook_image: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Platform]:
    platform = stack.start_platform(tmp_path_factory.mktemp("secret-loss"), docker_engine,
                                    notebook_image, CONFIG)
    try:
        yield platform
    finally:
        stack.stop_platform(platform)  # stops whatever the test put into `platform` last


def test_all_new_secrets_on_the_same_data_lock_nobody_out(
        deployed: stack.Platform, docker_engine: docker.DockerClient,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    p = deployed
    # ---- day 1: logins, a server writing a file, auth_state stored with the first crypt key
    tess_browser = login(p.hub.url, "tess", p.passwords["tess"])
    sam_browser = login(p.hub.url, "sam", p.passwords["sam"])
    uma_browser = login(p.hub.url, "uma", p.passwords["uma"])
    assert tess_browser and sam_browser and uma_browser
    tess_token = tess_browser.new_token("tess")
    tess = stack.TokenClient(p.hub.url, tess_token)
    sam = stack.TokenClient(p.hub.url, sam_browser.new_token("sam"))
    uma_token = uma_browser.new_token("uma")
    assert tess.start_server("tess", {"image": "minimal"}).status_code in (201, 202)
    written = tess.server("PUT", "tess", "api/contents/day1.txt",
                          json={"type": "file", "format": "text", "content": "written on day 1"})
    assert written.status_code in (200, 201), written.text
    box = docker_engine.containers.get("jupyter-tess")
    users_before = {u["name"]: u["admin"] for u in sam.api("GET", "/users").json()}
    groups_before = {g["name"]: sorted(g["users"]) for g in sam.api("GET", "/groups").json()}
    entries_before = ldap_entries(p.ldap)
    old = {"pg": p.postgres.password, "ldap_admin": p.ldap.admin_password,
           "ldap_ro": p.ldap.readonly_password, "users": dict(p.passwords)}

    # ---- everything stops; every generated secret is regenerated; the same data is reused
    p.hub.stop()
    p.proxy.stop()
    p.postgres = restart_postgres(p.postgres, "pg2-" + secrets.token_urlsafe(18))
    p.ldap = restart_slapd(p.ldap, "adm2-" + secrets.token_urlsafe(18),
                           "ro2-" + secrets.token_urlsafe(18))
    p.passwords = {name: "pw2-" + secrets.token_urlsafe(15) for name in old["users"]}
    stack.reconcile_ldap(p.ldap, p.settings, p.passwords)  # binds with the NEW admin password
    p.hub = restart_hub(p, tmp_path_factory.mktemp("hub-day2"))
    p.proxy = p.hub.proxy

    # the old secrets are really gone
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host="127.0.0.1", port=p.postgres.port, user="jupyterhub",
                         dbname="jupyterhub", password=old["pg"], connect_timeout=5)
    assert not p.ldap.connection(f"cn=admin,{p.ldap.base_dn}", old["ldap_admin"]).bound
    assert not p.ldap.connection(f"cn=readonly,{p.ldap.base_dn}", old["ldap_ro"]).bound
    assert login(p.hub.url, "tess", old["users"]["tess"]) is None

    # ---- the declared users log in with their new passwords; state and data are intact
    assert ldap_entries(p.ldap) == entries_before
    sam_browser = login(p.hub.url, "sam", p.passwords["sam"])
    tess_browser = login(p.hub.url, "tess", p.passwords["tess"])
    assert sam_browser and tess_browser
    sam = stack.TokenClient(p.hub.url, sam_browser.new_token("sam"))
    assert {u["name"]: u["admin"] for u in sam.api("GET", "/users").json()} == users_before
    assert {g["name"]: sorted(g["users"]) for g in sam.api("GET", "/groups").json()} \
        == groups_before
    # tess's server outlived it all: same container, ready, routed again by the new proxy
    assert docker_engine.containers.get("jupyter-tess").id == box.id
    tess = stack.TokenClient(p.hub.url, tess_token)  # the new proxy's address, day-1 token
    assert tess.user("tess")["servers"][""]["ready"] is True
    stack.wait_until(lambda: stack.server_answers(p.hub.url, "tess"), 30, "tess's route")
    tess = stack.TokenClient(p.hub.url, tess_browser.new_token("tess"))
    kept = tess.server("GET", "tess", "api/contents/day1.txt")
    assert kept.status_code == 200 and kept.json()["content"] == "written on day 1"

    # ---- the new crypt key cannot read uma's day-1 auth_state: JupyterHub treats it as
    # empty, so her spawn is refused until she logs in again (docs/admin-guide.md)
    uma = stack.TokenClient(p.hub.url, uma_token)
    refused = uma.api("POST", "/users/uma/server", json={"image": "minimal"})
    if refused.status_code in (201, 202):  # refused while starting: the pre-spawn hook failed
        stack.wait_until(lambda: not uma.user("uma").get("servers", {}).get("", {}).get(
            "pending"), 60, "uma's failed spawn")
        assert not uma.user("uma").get("servers")
    else:
        assert refused.status_code >= 400
    assert "Failed to retrieve encrypted auth_state for uma" in p.hub.log.read_text()
    uma_browser = login(p.hub.url, "uma", p.passwords["uma"])
    assert uma_browser
    uma = stack.TokenClient(p.hub.url, uma_browser.new_token("uma"))
    assert uma.start_server("uma", {"image": "minimal"}).status_code in (201, 202)
    assert stack.server_answers(p.hub.url, "uma")


def test_previous_crypt_key_keeps_auth_state_and_is_then_not_needed(
        deployed: stack.Platform) -> None:
    """Rotation where JupyterHub supports it (hubPreviousCryptKeys): with "new;old" in the key
    file the day-1 auth_state is read and re-encrypted with the new key, so the spawn needs no
    new login, and afterwards the old key can go. The control is the test above: the new key
    alone refuses the same spawn."""
    p = deployed
    browser = login(p.hub.url, "uma", p.passwords["uma"])
    assert browser
    token = browser.new_token("uma")
    key_file = Path(p.hub.settings["JHC_CRYPT_KEY_FILE"])
    old_key = key_file.read_text().strip()
    new_key = secrets.token_hex(32)

    for keys in (f"{new_key};{old_key}", new_key):
        p.hub.stop()
        stack.write_secret(key_file, keys)  # what the hub container's upload holds
        p.hub.start()
        uma = stack.TokenClient(p.hub.url, token)
        started = uma.start_server("uma", {"image": "minimal"})
        assert started.status_code in (201, 202), (keys == new_key, started.text)
        assert stack.server_answers(p.hub.url, "uma")
        uma.stop_server("uma")
    assert "Failed to retrieve encrypted auth_state for uma" not in p.hub.log.read_text()
