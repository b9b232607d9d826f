"""The project's Postgres image scripts (services/postgres) against a real PostgreSQL.

Runs the image's own files on this machine's PostgreSQL (Debian's package; the official image
cannot be pulled here): entrypoint.sh with the real server as the "upstream entrypoint", as the
postgres account (the image drops to it with gosu). Needs root and `apt-get install postgresql`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_DIR = ROOT / "services" / "postgres"
PG_ROOT = Path("/usr/lib/postgresql")


#: a test that runs Debian's PostgreSQL as its postgres account (tests/conftest.py: `needs`)
POSTGRES = pytest.mark.needs("postgresql", "runuser", "root")


def pg_bin() -> Path:
    versions = sorted(PG_ROOT.glob("*/bin"), key=lambda p: int(p.parent.name))
    assert versions, "PostgreSQL: declare it with @POSTGRES"
    return versions[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_owned(path: Path, text: str) -> Path:
    """A mode-600 file of the postgres account, as the container upload is."""
    path.write_text(text)
    os.chmod(path, 0o600)
    shutil.chown(path, "postgres", "postgres")
    return path


@dataclass
class Cluster:
    root: Path
    bin: Path
    major: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    def env(self, password_file: Path, **extra: str) -> dict[str, str]:
        """The environment of the image: what the component sets plus the official image's."""
        return {"PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin", "PGDATA": str(self.data),
                "PG_MAJOR": self.major, "POSTGRES_USER": "jupyterhub",
                "POSTGRES_PASSWORD_FILE": str(password_file),
                "JHC_POSTGRES_LIBEXEC": str(PG_DIR), "JHC_UPSTREAM_ENTRYPOINT": "env",
                **extra}


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """An initialised cluster (as the official entrypoint leaves it) with password 'first'.
    Under /tmp directly: pytest's tmp_path is private to root, the postgres account needs in."""
    binaries = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="jhc-pg-image-"))
    os.chmod(root, 0o755)
    shutil.chown(root, "postgres", "postgres")
    pw = write_owned(root / "initial.pw", "first-" + secrets.token_hex(8))
    subprocess.run(["runuser", "-u", "postgres", "--", str(binaries / "initdb"), "-D",
                    str(root / "data"), "-U", "jupyterhub", f"--pwfile={pw}",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    with open(root / "data" / "pg_hba.conf", "a") as hba:
        hba.write("host all all all scram-sha-256\n")  # what the official entrypoint appends
    try:
        yield Cluster(root, binaries, (root / "data" / "PG_VERSION").read_text().strip())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def start_via_entrypoint(cluster: Cluster, password_file: Path, port: int,
                         **extra: str) -> subprocess.Popen[bytes]:
    """entrypoint.sh postgres ..., as the postgres account; the "upstream" runs the server."""
    sock = cluster.root / "sock"
    sock.mkdir(exist_ok=True)
    shutil.chown(sock, "postgres", "postgres")
    log = open(cluster.root / "server.log", "ab")  # noqa: SIM115  closed with the process
    return subprocess.Popen(
        ["runuser", "-u", "postgres", "--", "env", "-i",
         *[f"{k}={v}" for k, v in cluster.env(password_file, **extra).items()],
         "bash", str(PG_DIR / "entrypoint.sh"), "postgres", "-c", "listen_addresses=127.0.0.1",
         "-p", str(port), "-k", str(sock), "-c", "fsync=off"],
        stdout=log, stderr=subprocess.STDOUT)


def login(port: int, password: str) -> bool:
    try:
        psycopg2.connect(host="127.0.0.1", port=port, user="jupyterhub", dbname="postgres",
                         password=password, connect_timeout=5).close()
    except psycopg2.OperationalError as err:
        if "password authentication failed" in str(err):
            return False
        raise
    return True


def wait_for(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {log.read_text()[-3000:]}")
        ready = subprocess.run([str(pg_bin() / "pg_isready"), "-q", "-h", "127.0.0.1",
                                "-p", str(port)], timeout=10, check=False)
        if ready.returncode == 0:  # accepting connections (1: still starting up)
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"server not up: {log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()  # SIGTERM: smart shutdown
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@POSTGRES
def test_every_start_sets_the_password_from_the_file(cluster: Cluster) -> None:
    """A regenerated password file works after a restart, the old password does not, and
    neither the password nor its verifier appears in the server's log."""
    old = (cluster.root / "initial.pw").read_text()
    new = "second-" + secrets.token_hex(12)
    pw = write_owned(cluster.root / "postgres-password", new + "\n")
    port = free_port()
    proc = start_via_entrypoint(cluster, pw, port)
    try:
        wait_for(port, proc, cluster.root / "server.log")
        assert login(port, new)
        assert not login(port, old)
    finally:
        stop(proc)
    log = (cluster.root / "server.log").read_text()
    assert "password of role jupyterhub set" in log
    assert new not in log and "SCRAM-SHA-256$" not in log and old not in log


@POSTGRES
def test_another_major_is_refused_with_the_procedure(cluster: Cluster) -> None:
    pw = write_owned(cluster.root / "postgres-password", "whatever-" + secrets.token_hex(6))
    before = sorted(p.name for p in cluster.data.iterdir())
    other = str(int(cluster.major) + 2)
    proc = start_via_entrypoint(cluster, pw, free_port(), PG_MAJOR=other)
    assert proc.wait(60) == 1
    log = (cluster.root / "server.log").read_text()
    assert f"PostgreSQL {cluster.major} cluster" in log and f"runs PostgreSQL {other}" in log
    assert '"Upgrade PostgreSQL (major version)" in docs/admin-guide.md' in log
    guide = (ROOT / "docs" / "admin-guide.md").read_text()
    assert "## Upgrade PostgreSQL (major version)" in guide  # the named procedure exists
    assert sorted(p.name for p in cluster.data.iterdir()) == before
    assert not (cluster.data / "postmaster.pid").exists()  # no server was started


@POSTGRES
def test_hub_db_dump_writes_a_restorable_archive(cluster: Cluster) -> None:
    pw_value = "dump-" + secrets.token_hex(10)
    pw = write_owned(cluster.root / "postgres-password", pw_value)
    port = free_port()
    proc = start_via_entrypoint(cluster, pw, port)
    backups = cluster.root / "backups"
    try:
        wait_for(port, proc, cluster.root / "server.log")
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="jupyterhub",
                                dbname="postgres", password=pw_value)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE jupyterhub")
        conn.close()
        with psycopg2.connect(host="127.0.0.1", port=port, user="jupyterhub",
                              dbname="jupyterhub", password=pw_value) as db, db.cursor() as cur:
            cur.execute("CREATE TABLE users (name text); INSERT INTO users VALUES ('ada')")
        result = subprocess.run(
            ["bash", str(PG_DIR / "hub-db-dump.sh")],
            env={"PATH": f"{cluster.bin}:/usr/bin:/bin", "PGHOST": "127.0.0.1",
                 "PGPORT": str(port), "PGUSER": "jupyterhub", "PGDATABASE": "jupyterhub",
                 "JHC_DB_PASSWORD_FILE": str(pw), "JHC_BACKUP_DIR": str(backups),
                 "JHC_HUB_VERSION": "6.1.1"},
            capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert pw_value not in result.stdout + result.stderr
        dumps = list(backups.iterdir())
        assert len(dumps) == 1 and dumps[0].name.startswith("hub-db-before-jupyterhub-6.1.1-")
        assert dumps[0].stat().st_mode & 0o077 == 0
        listing = subprocess.run([str(cluster.bin / "pg_restore"), "--list", str(dumps[0])],
                                 capture_output=True, text=True, check=True).stdout
        assert "TABLE public users" in listing
        # a wrong password fails the dump (and so the deploy), leaving no archive behind
        bad = write_owned(cluster.root / "bad.pw", "wrong")
        failed = subprocess.run(
            ["bash", str(PG_DIR / "hub-db-dump.sh")],
            env={"PATH": f"{cluster.bin}:/usr/bin:/bin", "PGHOST": "127.0.0.1",
                 "PGPORT": str(port), "PGUSER": "jupyterhub", "PGDATABASE": "jupyterhub",
                 "JHC_DB_PASSWORD_FILE": str(bad), "JHC_BACKUP_DIR": str(backups),
                 "JHC_HUB_VERSION": "6.1.2"},
            capture_output=True, text=True, timeout=120, check=False)
        assert failed.returncode != 0
        assert [p.name for p in backups.iterdir() if "6.1.2" in p.name] == []
    finally:
        stop(proc)


def test_scram_verifier_refuses_what_postgres_would_prepare_differently() -> None:
    for value in ("", "caf\u00e9"):
        result = subprocess.run(["perl", str(PG_DIR / "scram-verifier.pl")], input=value,
                                capture_output=True, text=True, check=False)
        assert result.returncode != 0 and not result.stdout


def test_dockerfile_builds_from_the_pinned_official_image() -> None:
    from components.platform.versions import POSTGRES_IMAGE

    text = (PG_DIR / "Dockerfile").read_text()
    assert f"ARG POSTGRES_IMAGE={POSTGRES_IMAGE}\n" in text and "FROM ${POSTGRES_IMAGE}" in text
    copied = next(line for line in text.splitlines() if line.startswith("COPY "))
    for name in ("entrypoint.sh", "converge-password.sh", "scram-verifier.pl", "hub-db-dump.sh"):
        assert name in copied and (PG_DIR / name).exists()
    ignore = (PG_DIR / ".dockerignore").read_text().split()
    assert ignore[0] == "*" and {f"!{n}" for n in ("Dockerfile", "entrypoint.sh")} <= set(ignore)


@POSTGRES
def test_other_commands_pass_through_untouched(cluster: Cluster) -> None:
    """The pre-upgrade dump runs through this entrypoint too: no major check, no password
    change, the command runs as given (the official entrypoint then execs it)."""
    pw = write_owned(cluster.root / "postgres-password", "unused-" + secrets.token_hex(6))
    env = cluster.env(pw, PG_MAJOR="1")  # a mismatch that `postgres` would refuse
    result = subprocess.run(["bash", str(PG_DIR / "entrypoint.sh"), "sh", "-c", "echo ran:$0", "x"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ran:x", result.stderr
    assert "jhc-postgres" not in result.stderr
