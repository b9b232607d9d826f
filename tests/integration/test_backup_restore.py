"""Backup and restore for real: services/backup/jhc-backup against a running platform.

Why: issue 10 asks for proof that a deployment comes back from its backup. A platform (real
slapd bootstrapped and reconciled, real PostgreSQL, JupyterHub with the project's config) gets
hub records and home files owned by the users' uids; the backup script (the file the backup
container runs, run here on the host: Debian 12 has PostgreSQL 15 and restic 0.14) backs it up;
everything is destroyed; a fresh deployment (new data directory, new PostgreSQL cluster, a
freshly bootstrapped slapd) is restored by the same script; then the users log in with their
passwords, find their files with their owners, and the hub knows the same users and groups.
Once into a local directory repository, once into S3 on moto's server on loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
import stack

from components.config.accounts import USERS_GID

SCRIPT = stack.REPO / "services" / "backup" / "jhc-backup"
MOTO = Path(sys.executable).parent / "moto_server"
IMAGE = "jhc-backup-it:not-spawned"  # only the spawner menu names it; nothing is spawned

CONFIG: dict[str, object] = {
    "groups": [{"name": "physics"}, {"name": "students"}],
    "users": [
        {"name": "ada", "fullName": "Ada Lovelace", "groups": ["physics"], "admin": True},
        {"name": "ben", "groups": ["students"]},
    ],
}


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _backup_env(root: Path, platform_root: Path, data_dir: Path, ldap_root: Path,
                postgres: stack.Postgres, repo: dict[str, str]) -> dict[str, str]:
    pg_bin = str(Path(stack._pg_bin("pg_dump")).parent)
    return {
        "PATH": f"{pg_bin}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(root),
        "JHC_DATA_DIR": str(data_dir),
        "JHC_BACKUP_STATE_DIR": str(root / "backup-state"),
        "RESTIC_PASSWORD_FILE": str(root / "restic-password"),
        "JHC_BACKUP_ENV_DIR": str(root / "backup-env"),
        "JHC_PG_HOST": "127.0.0.1", "JHC_PG_PORT": str(postgres.port),
        "JHC_PG_PASSWORD_FILE": str(stack.write_secret(platform_root / "pg-password",
                                                       postgres.password)),
        "JHC_LDAP_CONFIG_DIR": str(ldap_root / "config"),
        "JHC_HUB_KEY_FILES": f"{platform_root}/hub/secrets/cookie-secret:"
                             f"{platform_root}/hub/secrets/crypt-key",
        "JHC_BACKUP_HOST": "jhc-it",
        **repo,
    }


@contextlib.contextmanager
def _moto_s3(root: Path) -> Iterator[str]:
    """moto's S3-compatible server on a free loopback port; yields its endpoint URL."""
    port = stack.free_port()
    log = root / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise stack.StackError(f"moto_server exited: {stack.tail(log)}")
        try:
            return requests.get(url, timeout=2).status_code < 500
        except requests.RequestException:
            return False

    try:
        stack.wait_until(up, 60, "moto_server")
        yield url
    finally:
        stack.stop_process(proc)


def _seed_files(platform: stack.Platform) -> dict[str, tuple[bytes, int, int, int]]:
    """Files in the homes, the shared dir and Caddy's state, owned like the hub makes them."""
    data = platform.data_dir
    wanted = {}
    for name in ("ada", "ben"):
        home = data / "homes" / name
        (home / "work").mkdir(parents=True, exist_ok=True)
        for path in (home, home / "work"):
            os.chown(path, platform.uid_of(name), USERS_GID)
        note = home / "work" / "notes.ipynb"
        note.write_text(f'{{"cells": [], "owner": "{name}"}}\n')
        os.chown(note, platform.uid_of(name), USERS_GID)
        note.chmod(0o600)
    shared = data / "shared" / "course.txt"
    shared.write_text("shared by the class\n")
    os.chown(shared, platform.uid_of("ada"), USERS_GID)
    caddy = data / "state" / "caddy" / "acme" / "account.json"
    caddy.parent.mkdir(parents=True, exist_ok=True)
    caddy.write_text('{"acme": "account"}\n')
    for path in sorted(data.rglob("*")):
        if path.is_file() and "datasets" not in path.parts:
            st = path.stat()
            wanted[str(path.relative_to(data))] = (path.read_bytes(), st.st_uid, st.st_gid,
                                                   st.st_mode)
    return wanted


def _hub_records(client: stack.TokenClient) -> dict[str, Any]:
    users = client.api("GET", "/users")
    users.raise_for_status()
    groups = client.api("GET", "/groups")
    groups.raise_for_status()
    return {"users": {u["name"]: (u["created"], u["admin"]) for u in users.json()},
            "groups": {g["name"]: sorted(g["users"]) for g in groups.json()}}


def _db_records(postgres: stack.Postgres) -> tuple[str, str, str]:
    """The hub's users, groups with members and API tokens, as its database holds them."""
    return (postgres.psql("SELECT name, created, admin FROM users ORDER BY name"),
            postgres.psql("SELECT g.name, u.name FROM groups g LEFT JOIN user_group_map m "
                          "ON m.group_id = g.id LEFT JOIN users u ON u.id = m.user_id "
                          "ORDER BY 1, 2"),
            postgres.psql("SELECT u.name, t.note FROM api_tokens t JOIN users u "
                          "ON u.id = t.user_id ORDER BY 1, 2"))


def _admin_client(hub_url: str, password: str) -> stack.TokenClient:
    browser = stack.Browser(hub_url)
    response = browser.login("ada", password)
    assert response.status_code == 302, response.text[-300:]
    return stack.TokenClient(hub_url, browser.new_token("ada", note="backup-it"))


@pytest.mark.parametrize("kind", ["directory", "s3"])
def test_backup_then_restore_into_a_fresh_deployment(
        kind: str, docker_engine: docker.DockerClient, tmp_path: Path) -> None:
    undo = contextlib.ExitStack()
    with undo:
        tmp_path.chmod(0o755)  # slapd/postgres accounts traverse it
        repo: dict[str, str] = {}
        backup_root = tmp_path / "backup"
        (backup_root / "backup-env").mkdir(parents=True)
        stack.write_secret(backup_root / "restic-password", "restic-" + os.urandom(12).hex())
        if kind == "directory":
            # outside the data directory, as the local stack's default is
            repo["RESTIC_REPOSITORY"] = str(tmp_path / "repository")
        else:
            endpoint = undo.enter_context(_moto_s3(tmp_path))
            repo["RESTIC_REPOSITORY"] = f"s3:{endpoint}/jhc-backup-it"
            # credentials reach restic as files, the way the container receives them
            stack.write_secret(backup_root / "backup-env" / "AWS_ACCESS_KEY_ID", "AKIAMOTO")
            stack.write_secret(backup_root / "backup-env" / "AWS_SECRET_ACCESS_KEY",
                               "moto-secret-" + os.urandom(8).hex())

        # ---- a running platform with hub records and users' files
        first_root = tmp_path / "first"
        first = stack.start_platform(first_root, docker_engine, IMAGE, CONFIG)
        first_undo = undo.enter_context(contextlib.ExitStack())
        first_undo.callback(stack.stop_platform, first)
        admin = _admin_client(first.hub.url, first.passwords["ada"])
        assert stack.Browser(first.hub.url).login("ben", first.passwords["ben"]).status_code == 302
        created = admin.api("POST", "/groups/lab-members", json={"users": ["ada", "ben"]})
        assert created.status_code == 201, created.text
        records = _hub_records(admin)
        uids = {name: first.uid_of(name) for name in ("ada", "ben")}  # from slapd
        assert set(records["users"]) == {"ada", "ben"}
        assert records["groups"]["lab-members"] == ["ada", "ben"]
        db_records = _db_records(first.postgres)
        assert "lab-members|ben" in db_records[1] and "ada|backup-it" in db_records[2]
        files = _seed_files(first)
        ldap_root = first.ldap.root
        env = _backup_env(backup_root, first_root, first.data_dir, ldap_root, first.postgres, repo)

        # ---- backups: unhealthy until one succeeds; a failed run is loud
        health = _run(env, "health")
        assert health.returncode == 1 and "no successful backup" in health.stdout
        ran = _run(env, "run")
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert _run(env, "health").returncode == 0
        status = _run(env, "status")
        assert status.returncode == 0 and "last success: 20" in status.stdout, status.stdout
        if kind == "directory":
            broken = dict(env, JHC_PG_PASSWORD_FILE=str(stack.write_secret(
                backup_root / "wrong-pg", "not-the-password")))
            failed = _run(broken, "run")
            assert failed.returncode != 0 and "BACKUP FAILED" in failed.stderr
            health = _run(env, "health")
            assert health.returncode == 1 and "failed" in health.stdout
            assert _run(env, "run").returncode == 0
            assert _run(env, "health").returncode == 0
        assert not (first.data_dir / "state" / "backup" / "dump").exists()  # dumps not left
        verify = _run(env, "verify")
        assert verify.returncode == 0, verify.stderr[-3000:]
        # 2 users + 3 groups + base, ou=people, ou=groups, readonly DN at least
        entries = int(verify.stdout.split(" LDAP entries")[0].rsplit(" ", 1)[-1])
        assert entries >= 7 and "2 files in homes: restorable" in verify.stdout, verify.stdout

        # ---- the data is destroyed
        secrets = {"admin": first.ldap.admin_password, "readonly": first.ldap.readonly_password}
        base_dn = first.ldap.base_dn
        first_undo.close()
        shutil.rmtree(first.data_dir)
        shutil.rmtree(ldap_root)

        # ---- a fresh deployment, bootstrapped empty, then restored
        second_root = tmp_path / "second"
        settings = stack.stack_settings(second_root / "data", CONFIG)
        stack.prepare_data_dir(settings)
        fresh_ldap = stack.start_slapd(ldap_root, base_dn, settings.service.ldap_organisation)
        fresh_ldap.stop()  # scripts/restore.sh stops the LDAP container before restoring
        postgres = stack.start_postgres()
        undo.callback(postgres.stop)
        env2 = _backup_env(backup_root, second_root, second_root / "data", ldap_root, postgres,
                           repo)
        restored = _run(env2, "restore", "latest")
        assert restored.returncode == 0, restored.stderr[-3000:]
        # the hub's database is the one backed up: users, groups with members, tokens
        assert _db_records(postgres) == db_records

        admin_file = stack.write_secret(ldap_root / "admin.pw", secrets["admin"])
        ldap = stack.run_slapd(ldap_root, base_dn, secrets["admin"], admin_file,
                               secrets["readonly"])
        undo.callback(ldap.stop)
        network = stack.create_network(docker_engine)
        undo.callback(network.stop)
        hub, _, _ = stack.start_hub(settings, root=second_root / "hub", network=network,
                                    ldap=ldap, postgres=postgres, image=IMAGE)
        undo.callback(hub.proxy.stop)
        undo.callback(hub.stop)

        # ---- users log in with their passwords; wrong ones are still refused
        assert stack.Browser(hub.url).login("ben", "wrong").status_code != 302
        assert stack.Browser(hub.url).login("ben", first.passwords["ben"]).status_code == 302
        admin = _admin_client(hub.url, first.passwords["ada"])
        # the hub serves the restored records: same users with their creation times (a login
        # never rewrites them); a login syncs its user's LDAP groups, other groups stay
        after = _hub_records(admin)
        assert after["users"] == records["users"]
        assert set(after["groups"]) == set(records["groups"])
        # files, owners and modes
        data = second_root / "data"
        for rel, (content, uid, gid, mode) in files.items():
            st = (data / rel).stat()
            assert ((data / rel).read_bytes(), st.st_uid, st.st_gid, st.st_mode) == \
                (content, uid, gid, mode), rel
        for name in ("ada", "ben"):
            st = (data / "homes" / name).stat()
            assert (st.st_uid, st.st_gid) == (uids[name], USERS_GID)
        keys = data / "state" / "backup" / "restored-hub-keys"
        assert (keys / "cookie-secret").read_text() == \
            (first_root / "hub" / "secrets" / "cookie-secret").read_text()
