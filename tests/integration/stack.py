"""The deployed artifacts, started as real processes on this machine (importable by bench/).

Why: issue 4 asks for proof that what the stack deploys works together — the project's slapd
bootstrap and reconcile tool, a PostgreSQL cluster set up like the official image does it,
configurable-http-proxy, JupyterHub 6.1.1 with services/hub/jupyterhub_config.py and the
environment components.platform.hub.hub_environment() computes, DockerSpawner on a real engine. Nothing
here is a test: the pytest fixtures (conftest.py) and bench/spawn_latency.py both build on it.

Every service listens on loopback only, except the hub, which binds 0.0.0.0 so that user
containers reach it at the test network's gateway (as they reach it on `jhc-frontend` in
production). Every start function returns an object whose ``stop()`` undoes exactly that start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import ldap3
import ldap3.core.exceptions
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from components.config import Settings, load_settings  # noqa: E402
from components.platform.hub import hub_environment  # noqa: E402
from components.platform.ldap import desired_document  # noqa: E402
from components.platform.proxy import proxy_command  # noqa: E402
from services.hub.jhc_settings import SETTINGS_FILE_VAR, settings_document  # noqa: E402

#: JHC_IT_HUB_CONFIG points the hub at another copy of the config (used to break the code on
#: purpose and watch the scenarios fail without touching the tree).
HUB_CONFIG = Path(os.environ.get("JHC_IT_HUB_CONFIG")
                  or REPO / "services" / "hub" / "jupyterhub_config.py")
LDAP_DIR = REPO / "services" / "ldap"
NPM_BIN = REPO / ".cache" / "npm" / "node_modules" / ".bin"
CHP = NPM_BIN / "configurable-http-proxy"
PG_BIN_ROOT = Path("/usr/lib/postgresql")
DB_NAME = "jupyterhub"  # components.platform.postgres.DB: POSTGRES_USER and POSTGRES_DB
LABEL = "org.jupyterhub-cloud.integration"


class StackError(RuntimeError):
    """A service of the test stack did not start; the message carries its log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_secret(path: Path, value: str) -> Path:
    """A mode-600 file, as the Pulumi components upload secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return path


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check()`` until it returns a truthy value; raise StackError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def child_sessions(pid: int) -> list[int]:
    """The direct children of `pid`. A hub starts its managed services (culler, revoke) in
    sessions of their own (jupyterhub/services/service.py: start_new_session=True), out of reach
    of the hub's process group; each leads its own."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def kill_groups(*leaders: int) -> None:
    for leader in leaders:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signal.SIGKILL)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL; then the rest of the process group it leads and the sessions its
    children lead (a hub's managed services), so nothing this module started outlives it."""
    services = child_sessions(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    kill_groups(proc.pid, *services)


# ------------------------------------------------------------------------------------ settings


def stack_settings(data_dir: Path, raw: Mapping[str, Any]) -> Settings:
    """components.config.load_settings on a raw config (values given as Python objects are
    turned into Pulumi's string form), for the local stack with its data dir under tmp."""
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    return load_settings({"localDataDir": str(data_dir), **text}, "local")


# ---------------------------------------------------------------------------------------- LDAP


@dataclass
class Slapd:
    """A slapd bootstrapped by services/ldap/bootstrap.py, on a loopback port."""

    root: Path
    base_dn: str
    port: int
    admin_password: str
    admin_password_file: Path
    readonly_password: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def connection(self, user: str | None = None, password: str | None = None) -> ldap3.Connection:
        """A connection, bound when credentials are given (never raises on a failed bind)."""
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        conn = ldap3.Connection(server, user=user, password=password, raise_exceptions=False,
                                receive_timeout=10)
        conn.bind()
        return conn

    def admin(self) -> ldap3.Connection:
        return self.connection(f"cn=admin,{self.base_dn}", self.admin_password)

    def stop(self) -> None:
        stop_process(self.proc)


def start_slapd(root: Path, base_dn: str, organisation: str) -> Slapd:
    """Bootstrap exactly as the image's entrypoint does (bootstrap.py with the LDAP_* env)
    into root/, then run slapd as the entrypoint does, but on 127.0.0.1 only."""
    root.mkdir(parents=True, exist_ok=True)
    admin_password = "adm-" + secrets.token_urlsafe(18)
    readonly_password = "ro-" + secrets.token_urlsafe(18)
    admin_file = write_secret(root / "admin.pw", admin_password)
    ro_file = write_secret(root / "readonly.pw", readonly_password)
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LDAP_BASE_DN": base_dn,
        "LDAP_ORGANISATION": organisation,
        "LDAP_ADMIN_PASSWORD_FILE": str(admin_file),
        "LDAP_READONLY_PASSWORD_FILE": str(ro_file),
        "LDAP_CONFIG_DIR": str(root / "config"),
        "LDAP_DATA_DIR": str(root / "data"),
        "LDAP_RUN_DIR": str(root / "run"),
    }
    result = subprocess.run([sys.executable, str(LDAP_DIR / "bootstrap.py")], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise StackError(f"LDAP bootstrap failed: {result.stdout}{result.stderr}")
    return run_slapd(root, base_dn, admin_password, admin_file, readonly_password)


def run_slapd(root: Path, base_dn: str, admin_password: str, admin_file: Path,
              readonly_password: str) -> Slapd:
    """Run slapd on an existing root/config (bootstrapped, or restored from a backup) as the
    image's entrypoint does, but on 127.0.0.1 only; returns once the readonly DN binds."""
    (root / "run").mkdir(exist_ok=True)
    port = free_port()
    ldapi = "ldapi://" + urllib.parse.quote(str(root / "run" / "ldapi"), safe="")
    log = root / "slapd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["slapd", "-d", "stats", "-h", f"ldap://127.0.0.1:{port}/ {ldapi}",
             "-F", str(root / "config")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Slapd(root, base_dn, port, admin_password, admin_file, readonly_password, log, proc)

    def ready() -> bool:
        if proc.poll() is not None:
            raise StackError(f"slapd exited {proc.returncode}: {tail(log)}")
        try:
            conn = server.connection(f"cn=readonly,{base_dn}", readonly_password)
        except ldap3.core.exceptions.LDAPException:
            return False
        ok = conn.bound
        conn.unbind()
        return ok

    try:
        wait_until(ready, 20, "slapd")
    except Exception:
        server.stop()
        raise
    return server


def reconcile_ldap(server: Slapd, settings: Settings, passwords: Mapping[str, str]) -> dict:
    """Run the project's reconcile CLI on the document components.platform.ldap.desired_document()
    builds. Only the address and the admin password file differ from production (the
    document names ldap://ldap:389 and /run/secrets/ldap-admin-password)."""
    document = json.loads(desired_document(settings.service, dict(passwords)))
    document["server"] = server.url
    document["admin_password_file"] = str(server.admin_password_file)
    path = write_secret(server.root / "desired.json", json.dumps(document))
    result = subprocess.run(
        [sys.executable, str(LDAP_DIR / "reconcile.py"), "--desired", str(path), "--json",
         "--wait", "10"], capture_output=True, text=True, timeout=300, check=False)
    path.unlink()
    if result.returncode != 0:
        raise StackError(f"reconcile exit {result.returncode}: {result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ Postgres


def _pg_bin(name: str) -> str:
    versions = sorted(PG_BIN_ROOT.glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        raise StackError("PostgreSQL is not installed (apt-get install postgresql)")
    return str(versions[-1] / name)


@dataclass
class Postgres:
    """A PostgreSQL cluster owned by the postgres account, on 127.0.0.1:port."""

    root: Path
    port: int
    user: str
    password: str
    log: Path

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def psql(self, sql: str, database: str = DB_NAME) -> str:
        """Run SQL as the superuser over the cluster's unix socket ("trust", as in the image)."""
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", _pg_bin("psql"), "-h", str(self.socket_dir),
             "-p", str(self.port), "-U", self.user, "-d", database, "-At", "-v",
             "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=60,
            check=False)
        if result.returncode != 0:
            raise StackError(f"psql failed: {result.stderr}")
        return result.stdout.strip()

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D",
                        str(self.root / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(user: str = DB_NAME) -> Postgres:
    """initdb + pg_ctl start as the postgres account, the way the official image's entrypoint
    sets a cluster up with POSTGRES_USER/POSTGRES_DB/POSTGRES_PASSWORD_FILE and
    POSTGRES_HOST_AUTH_METHOD=scram-sha-256: the superuser is POSTGRES_USER with the file's
    password, the local socket is "trust", every host connection needs scram-sha-256."""
    root = Path(tempfile.mkdtemp(prefix="jhc-it-pg-"))
    os.chmod(root, 0o755)
    shutil.chown(root, "postgres", "postgres")
    password = "pg-" + secrets.token_urlsafe(18)
    pwfile = root / "pw"
    write_secret(pwfile, password)
    shutil.chown(pwfile, "postgres", "postgres")
    run_dir = root / "run"
    run_dir.mkdir()
    shutil.chown(run_dir, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    result = subprocess.run(
        [*as_pg, _pg_bin("initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"],
        capture_output=True, text=True, timeout=120, check=False)
    pwfile.unlink()
    if result.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise StackError(f"initdb failed: {result.stderr}")
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write("host all all all scram-sha-256\n")  # what the entrypoint appends
    port = free_port()
    log = root / "postgres.log"
    result = subprocess.run(
        [*as_pg, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
         f"-c listen_addresses=127.0.0.1 -p {port} -k {run_dir} -c fsync=off", "start"],
        capture_output=True, text=True, timeout=90, check=False)
    server = Postgres(root, port, user, password, log)
    if result.returncode != 0:
        text = tail(log)
        server.stop()
        raise StackError(f"pg_ctl start failed: {result.stderr}{text}")
    server.psql(f"CREATE DATABASE {DB_NAME}", database="postgres")
    return server


# -------------------------------------------------------------------------------------- Docker


@dataclass
class Network:
    """A user bridge network standing in for jhc-frontend; gateway = the host's address on it."""

    client: docker.DockerClient
    name: str
    gateway: str

    def containers(self) -> list[Any]:
        return self.client.containers.list(all=True, filters={"network": self.name})

    def stop(self) -> None:
        for container in self.containers():
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            self.client.networks.get(self.name).remove()


def create_network(client: docker.DockerClient, prefix: str = "jhc-it") -> Network:
    name = f"{prefix}-{secrets.token_hex(4)}"
    network = client.networks.create(name, driver="bridge", labels={LABEL: "1"})
    network.reload()
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
    return Network(client, name, gateway)


# --------------------------------------------------------------------------------------- proxy


@dataclass
class Proxy:
    """configurable-http-proxy as its own process (the proxy container's command, on loopback)."""

    port: int
    api_port: int
    token: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def routes(self) -> dict[str, Any]:
        response = requests.get(f"{self.api_url}/api/routes", timeout=5,
                                headers={"Authorization": f"token {self.token}"})
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        stop_process(self.proc)


def start_proxy(root: Path, hub_port: int) -> Proxy:
    """The command of components/platform/proxy.py, with loopback addresses and free ports. The token is
    in CONFIGPROXY_AUTH_TOKEN, as in the proxy container."""
    if not CHP.exists():
        raise StackError(f"{CHP} missing: run scripts/install-system-deps.sh (make deps)")
    root.mkdir(parents=True, exist_ok=True)
    port, api_port = free_port(), free_port()
    token = secrets.token_hex(32)
    log = root / "proxy.log"
    target = f"http://127.0.0.1:{hub_port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(CHP), *proxy_command("127.0.0.1", port, api_port, target)],
            env={"PATH": f"{NPM_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                 "CONFIGPROXY_AUTH_TOKEN": token},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proxy = Proxy(port, api_port, token, log, proc)

    def ready() -> bool:
        if proc.poll() is not None:
            raise StackError(f"configurable-http-proxy exited: {tail(log)}")
        try:
            return bool(proxy.routes() is not None)
        except requests.RequestException:
            return False

    try:
        wait_until(ready, 30, "configurable-http-proxy")
    except Exception:
        proxy.stop()
        raise
    return proxy


# ----------------------------------------------------------------------------------------- hub


@dataclass
class Hub:
    """A JupyterHub process with the project's config file and a given environment."""

    root: Path
    env: dict[str, str]
    port: int
    proxy: Proxy
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """The hub through the proxy (what users reach)."""
        return self.proxy.url

    @property
    def settings(self) -> dict[str, str]:
        """The hub's settings document (what jhc-settings.json holds in its container)."""
        return json.loads(Path(self.env[SETTINGS_FILE_VAR]).read_text())

    def start(self, timeout: float = 90) -> None:
        workdir = self.root / "workdir"
        workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"\n===== hub start {self.starts} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
                cwd=workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        proc = self.proc

        def health() -> bool:
            if proc.poll() is not None:
                raise StackError(f"jupyterhub exited {proc.returncode}: {tail(self.log)}")
            try:
                ok = requests.get(f"http://127.0.0.1:{self.port}/hub/health", timeout=2).ok
            except requests.RequestException:
                return False
            # the hub has (re)registered its default route with the proxy
            return ok and bool(self.proxy.routes().get("/", {}).get("hub"))

        try:
            wait_until(health, timeout, "the hub's health check and proxy route")
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=30)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Platform:
    """Everything one hub needs, and how to reach it."""

    settings: Settings
    passwords: dict[str, str]
    ldap: Slapd
    postgres: Postgres
    network: Network
    proxy: Proxy
    hub: Hub
    data_dir: Path
    image: str
    secret_values: list[str] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)

    def uid_of(self, name: str) -> int:
        """The uidNumber the reconcile gave the user, read from the real slapd."""
        conn = self.ldap.admin()
        try:
            conn.search(f"uid={name},ou=people,{self.ldap.base_dn}", "(objectClass=posixAccount)",
                        ldap3.BASE, attributes=["uidNumber"])
            (found,) = conn.entries
            return int(found.uidNumber.value)
        finally:
            conn.unbind()


def menu(settings: Settings, image: str) -> list[dict[str, Any]]:
    """The spawner menu as components.platform.notebook_images builds it, every entry pointing at the
    test notebook image (the production images cannot be built without a registry)."""
    return [{"name": i.name, "display_name": i.display_name, "image": image,
             "groups": list(i.groups)} for i in settings.service.images]


def hub_env(settings: Settings, *, root: Path, network: Network, proxy: Proxy, ldap: Slapd,
            postgres: Postgres, image: str, hub_port: int, db_name: str = DB_NAME,
            extra: Mapping[str, str] | None = None) -> tuple[dict[str, str], dict[str, str],
                                                              list[str]]:
    """(process environment, the overridden JHC_* values, secret values) of a hub process.

    The base is hub_environment(settings...) unchanged; `overrides` replaces only what must
    differ because the hub runs as a host process instead of a container on jhc-backend and
    jhc-frontend (docs/integration.md lists each one and why).
    """
    data_dir = settings.host.data_dir
    public_url = proxy.url
    env = hub_environment(settings.service, data_dir, network.name, public_url,
                          menu(settings, image))
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    cookie, crypt = secrets.token_hex(32), secrets.token_hex(32)
    overrides = {
        # /run/secrets/* are uploads into the hub container; here: mode-600 files under tmp
        "JHC_COOKIE_SECRET_FILE": str(write_secret(secrets_dir / "cookie-secret", cookie)),
        "JHC_CRYPT_KEY_FILE": str(write_secret(secrets_dir / "crypt-key", crypt)),
        "JHC_PROXY_AUTH_TOKEN_FILE": str(write_secret(secrets_dir / "proxy-token", proxy.token)),
        "JHC_DB_PASSWORD_FILE": str(write_secret(secrets_dir / "db-password", postgres.password)),
        # container DNS names (proxy, postgres, ldap, jupyterhub) -> loopback / the gateway
        "JHC_PROXY_API_URL": proxy.api_url,
        "JHC_HUB_PORT": str(hub_port),
        "JHC_HUB_CONNECT_HOST": network.gateway,
        "JHC_DB_HOST": "127.0.0.1",
        "JHC_DB_PORT": str(postgres.port),
        "JHC_LDAP_SERVER": "127.0.0.1",
        "JHC_LDAP_PORT": str(ldap.port),
        # the hub container sees <data dir>/homes at /homes and <data dir>/shared at /shared;
        # a host process sees them at their host paths
        "JHC_HOMES_HUB_DIR": f"{data_dir}/homes",
        "JHC_SHARED_HUB_DIR": f"{data_dir}/shared",
    }
    if "JHC_LDAP_READONLY_PASSWORD_FILE" in env:  # the revocation check's read account
        overrides["JHC_LDAP_READONLY_PASSWORD_FILE"] = str(
            write_secret(secrets_dir / "ldap-readonly-password", ldap.readonly_password))
    if db_name != DB_NAME:
        overrides["JHC_DB_NAME"] = db_name
    overrides.update(extra or {})
    for key in overrides:
        if key not in env and key not in ("JHC_HUB_PORT", "JHC_LDAP_SERVER", "JHC_LDAP_PORT",
                                          "JHC_DB_PORT", "JHC_DB_NAME", "JHC_CULL_EVERY",
                                          "JHC_REVOKE_EVERY", "JHC_START_TIMEOUT"):
            raise StackError(f"{key} is overridden but hub_environment() does not set it")
    env.update(overrides)
    # the hub reads its variables from one settings document, as in its container
    document = root / "jhc-settings.json"
    document.write_text(settings_document(env))
    path = f"{Path(sys.executable).parent}:{NPM_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    process_env = {"PATH": path, "HOME": str(root), "LANG": "C.UTF-8",
                   SETTINGS_FILE_VAR: str(document)}
    return process_env, overrides, [cookie, crypt, proxy.token, postgres.password]


def prepare_data_dir(settings: Settings) -> None:
    """What the host bootstrap/local stack leaves: homes/ (root, 0755), shared/ as Docker
    would create a missing bind source (root:root 0755: the hub must fix it), datasets."""
    data = Path(settings.host.data_dir)
    (data / "homes").mkdir(parents=True, exist_ok=True)
    (data / "shared").mkdir(parents=True, exist_ok=True)
    os.chmod(data / "shared", 0o755)
    for dataset in settings.service.datasets:
        path = Path(dataset.path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "README.txt").write_text("read-only dataset\n")
        path.chmod(0o777)  # only the read-only mount may stop users from writing


def start_hub(settings: Settings, *, root: Path, network: Network, ldap: Slapd,
              postgres: Postgres, image: str, db_name: str = DB_NAME,
              extra: Mapping[str, str] | None = None) -> tuple[Hub, dict[str, str], list[str]]:
    """A proxy plus a hub in front of it; the caller stops hub then proxy."""
    hub_port = free_port()
    proxy = start_proxy(root, hub_port)
    try:
        env, overrides, secret_values = hub_env(
            settings, root=root, network=network, proxy=proxy, ldap=ldap, postgres=postgres,
            image=image, hub_port=hub_port, db_name=db_name, extra=extra)
        hub = Hub(root, env, hub_port, proxy, root / "hub.log")
        hub.start()
    except Exception:
        proxy.stop()
        raise
    return hub, overrides, secret_values


# ------------------------------------------------------------------------------ HTTP (users)


XSRF_INPUT = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


class Browser:
    """What a user's browser does: the login form with its _xsrf, then the hub's pages and
    API with the session cookie (cookie-authenticated API calls send X-XSRFToken)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()

    def xsrf(self) -> str:
        return self.session.cookies.get("_xsrf", "")

    def login(self, username: str, password: str) -> requests.Response:
        """POST the login form; the response is the hub's answer (302 on success)."""
        page = self.session.get(f"{self.base}/hub/login", timeout=30)
        page.raise_for_status()
        match = XSRF_INPUT.search(page.text)
        token = match.group(1) if match else self.xsrf()
        return self.session.post(f"{self.base}/hub/login",
                                 data={"username": username, "password": password,
                                       "_xsrf": token},
                                 allow_redirects=False, timeout=60)

    def logged_in(self) -> bool:
        return any(c.name.startswith("jupyterhub-hub-login") for c in self.session.cookies)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-XSRFToken": self.xsrf(), "Referer": f"{self.base}/hub/home",
                   **kwargs.pop("headers", {})}
        return self.session.request(method, f"{self.base}/hub/api{path}", headers=headers,
                                    timeout=kwargs.pop("timeout", 60), **kwargs)

    def new_token(self, username: str, note: str = "integration") -> str:
        response = self.api("POST", f"/users/{username}/tokens", json={"note": note})
        if response.status_code != 201:
            raise StackError(f"token for {username}: {response.status_code} {response.text}")
        return response.json()["token"]


class TokenClient:
    """The hub API and the user's server, with an API token (as scripts and the culler do)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base}/hub/api{path}",
                                    timeout=kwargs.pop("timeout", 60), **kwargs)

    def server(self, method: str, username: str, path: str, **kwargs: Any) -> requests.Response:
        """A request to the user's server through the proxy (/user/<name>/...)."""
        return self.session.request(method, f"{self.base}/user/{username}/{path.lstrip('/')}",
                                    allow_redirects=False, timeout=kwargs.pop("timeout", 30),
                                    **kwargs)

    def user(self, username: str) -> dict[str, Any]:
        response = self.api("GET", f"/users/{username}")
        response.raise_for_status()
        return response.json()

    def start_server(self, username: str, options: Mapping[str, Any] | None = None,
                     timeout: float = 180) -> requests.Response:
        """POST .../server and wait until the server answers through the proxy."""
        response = self.api("POST", f"/users/{username}/server", json=dict(options or {}))
        if response.status_code not in (201, 202):
            return response
        self.wait_ready(username, timeout)
        return response

    def wait_ready(self, username: str, timeout: float = 180) -> None:
        def ready() -> bool:
            server = self.user(username).get("servers", {}).get("", {})
            if not server.get("ready"):
                if not server.get("pending") and not server:
                    raise StackError(f"server of {username} is gone before it was ready")
                return False
            return server_answers(self.base, username)

        wait_until(ready, timeout, f"{username}'s server", interval=0.5)

    def stop_server(self, username: str, timeout: float = 120) -> None:
        response = self.api("DELETE", f"/users/{username}/server")
        if response.status_code not in (202, 204, 400, 404):
            raise StackError(f"stop {username}: {response.status_code} {response.text}")
        wait_until(lambda: not self.user(username).get("servers"), timeout,
                   f"{username}'s server to stop", interval=0.5)


def server_answers(base_url: str, username: str) -> bool:
    """The user's server answers through the proxy (its route exists, the server is up):
    jupyter_server's /api returns its version without authentication."""
    try:
        response = requests.get(f"{base_url}/user/{username}/api", allow_redirects=False,
                                timeout=5)
    except requests.RequestException:
        return False
    return response.status_code == 200 and "version" in response.text


@contextlib.contextmanager
def running(what: str) -> Iterator[None]:
    """Time a step for the log (helps keep the suite inside its budget)."""
    start = time.monotonic()
    yield
    print(f"[stack] {what}: {time.monotonic() - start:.1f}s", file=sys.stderr)


# ------------------------------------------------------------------------------ whole platform


def start_platform(root: Path, client: docker.DockerClient, image: str,
                   raw_config: Mapping[str, Any],
                   hub_extra: Mapping[str, str] | None = None) -> Platform:
    """LDAP (bootstrapped + reconciled), Postgres, a network, proxy and hub, from one raw stack
    config. On failure everything already started is stopped again."""
    data_dir = root / "data"
    settings = stack_settings(data_dir, raw_config)
    passwords = {u.name: "pw-" + secrets.token_urlsafe(15) for u in settings.service.users}
    prepare_data_dir(settings)
    with contextlib.ExitStack() as undo:
        with running("slapd bootstrap + start"):
            ldap = start_slapd(root / "ldap", settings.service.ldap_base_dn,
                               settings.service.ldap_organisation)
        undo.callback(ldap.stop)
        with running("reconcile"):
            reconcile_ldap(ldap, settings, passwords)
        with running("postgres"):
            postgres = start_postgres()
        undo.callback(postgres.stop)
        network = create_network(client)
        undo.callback(network.stop)
        with running("proxy + hub"):
            hub, overrides, secret_values = start_hub(
                settings, root=root / "hub", network=network, ldap=ldap, postgres=postgres,
                image=image, extra=hub_extra)
        undo.callback(hub.proxy.stop)
        undo.callback(hub.stop)
        platform = Platform(settings, passwords, ldap, postgres, network, hub.proxy, hub,
                            data_dir, image,
                            secret_values + [ldap.admin_password, ldap.readonly_password,
                                             *passwords.values()], overrides)
        undo.pop_all()
    return platform


def stop_platform(platform: Platform) -> None:
    """Stop what start_platform started, user containers included (the hub leaves them
    running on purpose: cleanup_servers = False)."""
    for step in (platform.hub.stop, platform.proxy.stop, platform.network.stop,
                 platform.postgres.stop, platform.ldap.stop):
        try:
            step()
        except Exception as err:  # noqa: BLE001  keep stopping the rest
            print(f"[stack] teardown step {step.__qualname__} failed: {err}", file=sys.stderr)
