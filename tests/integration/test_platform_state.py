"""State and secrets of the deployed services: LDAP hashes and binds, the Postgres role, the
hub's state in Postgres across a hub restart, no secret in any log.

Why: the proxy runs apart from the hub and the hub keeps its state in Postgres precisely so that
a hub restart (config change, upgrade) keeps running servers reachable and users known.
"""

from __future__ import annotations

import subprocess

import docker
import ldap3
import psycopg2
import pytest
import stack

from services.ldap.desired import probe_uid


def test_ldap_refuses_anonymous_bind_and_search(platform: stack.Platform) -> None:
    server = ldap3.Server(platform.ldap.url, get_info=ldap3.NONE, connect_timeout=5)
    anonymous = ldap3.Connection(server, raise_exceptions=False)
    anonymous.bind()
    searched = anonymous.search(platform.ldap.base_dn, "(uid=*)", attributes=["uid"])
    assert not searched and not anonymous.entries
    anonymous.unbind()
    # an empty password with a real DN (an "unauthenticated bind", which ldap3 will not even
    # send) is no login either: ask with OpenLDAP's own client
    dn = f"uid=ada,ou=people,{platform.ldap.base_dn}"
    for password in ("", platform.passwords["ada"]):
        result = subprocess.run(
            ["ldapsearch", "-x", "-LLL", "-H", platform.ldap.url, "-D", dn, "-w", password,
             "-b", platform.ldap.base_dn, "(uid=ben)", "uid"],
            capture_output=True, text=True, timeout=30, check=False)
        assert (result.returncode == 0) == bool(password), result.stderr
        assert ("uid: ben" in result.stdout) == bool(password), result.stdout
    user = platform.ldap.connection(f"uid=ada,ou=people,{platform.ldap.base_dn}",
                                    platform.passwords["ada"])
    assert user.bound  # the control: the same DN with its password binds


def test_stored_ldap_hashes_are_argon2(platform: stack.Platform) -> None:
    admin = platform.ldap.admin()
    admin.search(f"ou=people,{platform.ldap.base_dn}", "(objectClass=posixAccount)",
                 attributes=["uid", "uidNumber", "userPassword"])
    found = {}
    for entry in admin.response:
        if entry["type"] == "searchResEntry":
            raw = entry["raw_attributes"]
            found[raw["uid"][0].decode()] = (int(raw["uidNumber"][0]), raw["userPassword"])
    assert set(found) == set(platform.passwords)
    explicit = {u.name: u.uid for u in platform.settings.service.users}
    for name, (uid, hashes) in found.items():
        # explicit in config, else the name's first choice (no collision among these names)
        assert uid == (explicit[name] or probe_uid(name, 0)), name
        assert len(hashes) == 1 and hashes[0].startswith(b"{ARGON2}$argon2"), (name, hashes)
        assert b"MD5" not in hashes[0].upper()


def test_postgres_role_password_is_scram(platform: stack.Platform) -> None:
    stored = platform.postgres.psql(
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'jupyterhub'")
    assert stored.startswith("SCRAM-SHA-256$"), stored[:16]
    assert platform.postgres.psql("SHOW password_encryption") == "scram-sha-256"
    # network logins need the password (scram-sha-256 in pg_hba), the right one works
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host="127.0.0.1", port=platform.postgres.port, user="jupyterhub",
                         dbname="jupyterhub", password="wrong", connect_timeout=5)
    psycopg2.connect(host="127.0.0.1", port=platform.postgres.port, user="jupyterhub",
                     dbname="jupyterhub", password=platform.postgres.password,
                     connect_timeout=5).close()


def test_hub_restart_keeps_servers_reachable_and_state(
    platform: stack.Platform, user_client, admin: stack.TokenClient,
    docker_engine: docker.DockerClient,
) -> None:
    ben = user_client("ben")
    if not ben.user("ben").get("servers"):
        assert ben.start_server("ben", {"image": "minimal"}).status_code in (201, 202)
    box = docker_engine.containers.get("jupyter-ben")
    users_before = {u["name"] for u in admin.api("GET", "/users").json()}

    platform.hub.stop()
    # with the hub down, the proxy still routes to the running server
    assert stack.server_answers(platform.hub.url, "ben")
    assert docker_engine.containers.get("jupyter-ben").status == "running"
    platform.hub.start()

    assert platform.hub.starts >= 2
    assert stack.server_answers(platform.hub.url, "ben")
    assert docker_engine.containers.get("jupyter-ben").id == box.id  # not respawned
    users_after = admin.api("GET", "/users")
    assert users_after.status_code == 200  # the admin's token survived too (Postgres)
    assert {u["name"] for u in users_after.json()} == users_before
    server = ben.user("ben")["servers"][""]
    assert server["ready"] is True
    # the server still accepts the user's token (its hub API calls work after the restart)
    listing = ben.server("GET", "ben", "api/contents/")
    assert listing.status_code == 200, listing.text
    # the hub's state is in Postgres, not in a sqlite file next to it
    assert {"ada", "ben"} <= set(platform.postgres.psql("SELECT name FROM users").split())
    assert not list((platform.hub.root / "workdir").glob("*.sqlite"))


def test_no_secret_in_any_log(platform: stack.Platform, admin: stack.TokenClient) -> None:
    logs = {path.name: path.read_text(errors="replace")
            for path in (platform.hub.log, platform.proxy.log, platform.ldap.log,
                         platform.postgres.log)}
    assert "Using Authenticator: jhc_ldap.JhcLDAPAuthenticator" in logs["hub.log"]
    for name, text in logs.items():
        for value in platform.secret_values:
            assert value not in text, name
        assert "$argon2" not in text and "SCRAM-SHA-256$" not in text, name
