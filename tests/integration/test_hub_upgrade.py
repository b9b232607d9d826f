"""A hub database created and used by the previous JupyterHub major release is upgraded when the
current hub starts, after a dump that restores (issue 7, point 10), the way JupyterHub's own
test_upgrade proves its migrations: the old release, installed in its own venv, creates and
fills a database in a real PostgreSQL (users, admin, groups, a server record, API tokens);
services/postgres/hub-db-dump.sh dumps it as the one-shot step before the hub does; then the
current hub with the project's config starts on it and upgrades the schema itself
(`JupyterHub.upgrade_db`). Users, groups, the running server and the tokens survive, and the
dump restores into an empty database with the old data.

The old release's venv is cached under .cache/jupyterhub-venvs/<version> (keyed on its version
and pins), so CI pays the pip install once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests
import stack

REPO = Path(__file__).resolve().parents[2]
OLD_JUPYTERHUB = "5.5.4"  # the previous major release of services/hub/requirements.txt's pin
# psycopg2-binary as the hub image pins it; the rest is what pip resolves for that release
OLD_PINS = [f"jupyterhub=={OLD_JUPYTERHUB}", "psycopg2-binary==2.9.13"]
VENV_CACHE = REPO / ".cache" / "jupyterhub-venvs"
OLD_DB = "hub_from_5"

CONFIG: dict[str, object] = {
    "groups": [{"name": "optics"}, {"name": "pupils"}],
    "users": [
        {"name": "wes", "fullName": "Wes Admin", "groups": ["optics"], "admin": True},
        {"name": "vic", "groups": ["optics"]},
        {"name": "xia", "groups": ["pupils"]},
    ],
    "allowedGroups": ["optics", "pupils"],
    "images": [{"name": "minimal", "displayName": "Minimal Python", "path": "minimal"}],
}


def old_venv() -> Path:
    """A venv with the old release, built once per version and pins (a marker says which)."""
    key = "\n".join(OLD_PINS)
    venv = VENV_CACHE / OLD_JUPYTERHUB
    marker = venv / "jhc-pins.txt"
    if marker.exists() and marker.read_text() == key:
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    result = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check",
                             "-q", *OLD_PINS], capture_output=True, text=True, timeout=900,
                            check=False)
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        pytest.fail(f"pip install {OLD_PINS} failed:\n{result.stderr[-3000:]}")
    marker.write_text(key)
    return venv


def db_url(pg: stack.Postgres, name: str) -> str:
    return f"postgresql+psycopg2://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/{name}"


OLD_HUB_CONFIG = """
import os
c = get_config()  # noqa: F821
c.JupyterHub.db_url = os.environ["OLD_DB_URL"]
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.admin_users = {"wes"}
c.Authenticator.allowed_users = {"wes", "vic", "xia"}
c.JupyterHub.load_groups = {"optics": ["wes", "vic"], "pupils": ["xia"]}
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ["OLD_PORT"])
c.JupyterHub.hub_port = int(os.environ["OLD_HUB_PORT"])
c.ConfigurableHTTPProxy.command = [os.environ["OLD_CHP"]]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:" + os.environ["OLD_API_PORT"]
c.JupyterHub.cookie_secret_file = os.environ["OLD_COOKIE_FILE"]
"""

# Run by the OLD release's python: what its hub would record for a running server and for a
# user's API token (JupyterHub's own ORM, as its test_upgrade populates old databases).
POPULATE = """
import datetime, json, os, sys
from jupyterhub import orm
db = orm.new_session_factory(os.environ["OLD_DB_URL"])()
vic = orm.User.find(db, "vic")
spawner = next((s for s in vic._orm_spawners if s.name == ""), None)
if spawner is None:
    spawner = orm.Spawner(user=vic, name="")
    db.add(spawner)
spawner.server = orm.Server(ip=sys.argv[1], port=8888, base_url="/user/vic/")
spawner.state = {"object_id": sys.argv[2], "object_name": "jupyter-vic"}
spawner.started = spawner.last_activity = datetime.datetime.utcnow()
db.commit()
token = vic.new_api_token(note="made by jupyterhub 5")
db.commit()
print(json.dumps({"token": token}))
"""


def run_old_hub(venv: Path, root: Path, pg: stack.Postgres) -> None:
    """The old release's hub, started once on the database: it creates its schema, roles, the
    users and groups from its config, its OAuth client; then it is stopped."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "jupyterhub_config.py").write_text(OLD_HUB_CONFIG)
    port = stack.free_port()
    env = {"PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(root),
           "OLD_DB_URL": db_url(pg, OLD_DB), "OLD_PORT": str(port),
           "OLD_HUB_PORT": str(stack.free_port()), "OLD_API_PORT": str(stack.free_port()),
           "OLD_CHP": str(stack.CHP),
           "OLD_COOKIE_FILE": str(stack.write_secret(root / "cookie", secrets.token_hex(32)))}
    log = root / "old-hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(venv / "bin" / "jupyterhub"), "-f",
                                 str(root / "jupyterhub_config.py")], cwd=root, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                raise stack.StackError(f"old hub exited {proc.returncode}: {stack.tail(log)}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/hub/health", timeout=2).ok
            except requests.RequestException:
                return False

        stack.wait_until(healthy, 120, f"JupyterHub {OLD_JUPYTERHUB}")
        assert f"Running JupyterHub version {OLD_JUPYTERHUB}" in log.read_text()
    finally:
        stack.stop_process(proc)


def run_dump(pg: stack.Postgres, backups: Path) -> Path:
    """services/postgres/hub-db-dump.sh, as the one-shot container runs it before the hub."""
    pw = stack.write_secret(backups.parent / "db-password", pg.password)
    bin_dir = Path(stack._pg_bin("pg_dump")).parent
    result = subprocess.run(
        ["bash", str(REPO / "services" / "postgres" / "hub-db-dump.sh")],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PGHOST": "127.0.0.1", "PGPORT": str(pg.port),
             "PGUSER": pg.user, "PGDATABASE": OLD_DB, "JHC_DB_PASSWORD_FILE": str(pw),
             "JHC_BACKUP_DIR": str(backups), "JHC_HUB_VERSION": "6.1.1"},
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    dumps = sorted(backups.glob("hub-db-before-jupyterhub-6.1.1-*.dump"))
    assert len(dumps) == 1
    return dumps[0]


def current_head() -> str:
    """The alembic head of the installed (current) JupyterHub."""
    from alembic.script import ScriptDirectory
    from jupyterhub import dbutil

    with dbutil._temp_alembic_ini("sqlite://") as ini:
        import alembic.config

        return ScriptDirectory.from_config(alembic.config.Config(ini)).get_heads()[0]


@pytest.fixture
def services(docker_engine: docker.DockerClient, notebook_image: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("upgrade")
    settings = stack.stack_settings(root / "data", CONFIG)
    stack.prepare_data_dir(settings)
    passwords = {u.name: "pw-" + secrets.token_urlsafe(12) for u in settings.service.users}
    ldap = stack.start_slapd(root / "ldap", settings.service.ldap_base_dn,
                             settings.service.ldap_organisation)
    started: list = [ldap.stop]
    try:
        stack.reconcile_ldap(ldap, settings, passwords)
        pg = stack.start_postgres()
        started.append(pg.stop)
        pg.psql(f"CREATE DATABASE {OLD_DB}", database="postgres")
        network = stack.create_network(docker_engine, "jhc-upgrade")
        started.append(network.stop)
        yield {"root": root, "settings": settings, "passwords": passwords, "ldap": ldap,
               "pg": pg, "network": network, "image": notebook_image, "stop": started}
    finally:
        for stop in reversed(started):
            stop()


def test_previous_major_database_upgraded_after_a_restorable_dump(
        services: dict, docker_engine: docker.DockerClient) -> None:
    root, pg, network = services["root"], services["pg"], services["network"]
    venv = old_venv()
    run_old_hub(venv, root / "old-hub", pg)

    # vic's "server": a container where DockerSpawner will look for it (jupyter-vic on the
    # hub's network, port 8888), answering HTTP like a server that is up
    box = docker_engine.containers.run(
        services["image"], entrypoint=["python3", "-m", "http.server", "8888"],
        name="jupyter-vic", network=network.name, detach=True,
        labels={stack.LABEL: "1"})
    box.reload()
    ip = box.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    populated = subprocess.run([str(venv / "bin" / "python"), "-c", POPULATE, ip, box.id],
                               env={"OLD_DB_URL": db_url(pg, OLD_DB), "PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True, timeout=120, check=False)
    assert populated.returncode == 0, populated.stderr
    vic_token = json.loads(populated.stdout.strip().splitlines()[-1])["token"]
    old_revision = pg.psql("SELECT version_num FROM alembic_version", database=OLD_DB)
    assert old_revision and old_revision != current_head()  # there is a schema to upgrade

    # 1. the dump, taken before the hub starts
    dump = run_dump(pg, root / "backups")

    # 2. the current hub, project config, on the old database: it upgrades, then serves
    hub, _, _ = stack.start_hub(services["settings"], root=root / "hub", network=network,
                                ldap=services["ldap"], postgres=pg, image=services["image"],
                                db_name=OLD_DB)
    services["stop"].extend([hub.proxy.stop, hub.stop])
    assert pg.psql("SELECT version_num FROM alembic_version", database=OLD_DB) == current_head()
    assert "Upgrading" in hub.log.read_text()

    # 3. users, admin flag, groups, the running server and the tokens survived
    vic = stack.TokenClient(hub.url, vic_token)  # a token the old release issued
    me = vic.api("GET", "/user")
    assert me.status_code == 200 and me.json()["name"] == "vic", me.text
    assert me.json()["servers"][""]["ready"] is True
    assert me.json()["servers"][""]["url"] == "/user/vic/"
    assert docker_engine.containers.get("jupyter-vic").id == box.id  # adopted, not respawned
    browser = stack.Browser(hub.url)
    assert browser.login("wes", services["passwords"]["wes"]).status_code == 302
    wes = stack.TokenClient(hub.url, browser.new_token("wes"))
    users = {u["name"]: u["admin"] for u in wes.api("GET", "/users").json()}
    assert users == {"wes": True, "vic": False, "xia": False}
    groups = {g["name"]: sorted(g["users"]) for g in wes.api("GET", "/groups").json()}
    assert groups["optics"] == ["vic", "wes"] and groups["pupils"] == ["xia"]
    notes = {t["note"] for t in wes.api("GET", "/users/vic/tokens").json()["api_tokens"]}
    assert "made by jupyterhub 5" in notes

    # 4. the dump restores, with the old schema and data
    pg.psql("CREATE DATABASE restored", database="postgres")
    bin_dir = Path(stack._pg_bin("pg_restore")).parent
    with open(dump, "rb") as archive:  # root's mode-600 file, read for the postgres account
        restore = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(bin_dir / "pg_restore"), "-h",
             str(pg.socket_dir), "-p", str(pg.port), "-U", pg.user, "-d", "restored",
             "--no-owner"], stdin=archive, capture_output=True, timeout=300, check=False)
    assert restore.returncode == 0, restore.stderr.decode(errors="replace")
    assert pg.psql("SELECT version_num FROM alembic_version", database="restored") == old_revision
    assert set(pg.psql("SELECT name FROM users", database="restored").split()) == {
        "wes", "vic", "xia"}
    assert pg.psql("SELECT count(*) FROM servers", database="restored") == "1"
    assert os.stat(dump).st_mode & 0o077 == 0
