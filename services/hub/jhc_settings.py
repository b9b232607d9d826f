"""The hub's settings: the validation of every JHC_* variable into typed ``HubSettings``.

Why one stdlib module for both sides: the Pulumi program (components/platform/hub.py) builds the hub's
variables and runs :func:`read_settings` on them at ``pulumi preview``, naming the stack
config key that fed a refused value; the hub runs the same function at start (jhc_hub.py) and
then only assigns traitlets. So the program refuses what the hub would refuse, and
every variable it reads is declared in jhc_variables (the docs table's source); the
document that carries them and the typed reader are in jhc_document.
Stdlib only: it runs in the Pulumi venv and in the hub image.

Secrets are never variables: ``*_FILE`` variables name mode-600 files mounted into the hub
container. With ``read_files=False`` (the program at preview time, where those files do not
exist) they are required but not read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

if __package__:  # the Pulumi program imports services.hub.jhc_settings
    from .jhc_document import (  # noqa: F401  (SETTINGS_FILE*, settings_document: re-exported)
        SETTINGS_FILE,
        SETTINGS_FILE_VAR,
        Env,
        load_document,
        parse_crypt_keys,
        read_secret_file,
        settings_document,
    )
    from .jhc_menu import NAME_RE, Dataset, ImageChoice, parse_datasets, parse_images
    from .jhc_values import cpu_amount, memory_bytes, normalize_login
    from .jhc_variables import HubConfigError
else:  # the hub image: the modules lie side by side in /etc/jupyterhub
    from jhc_document import (  # noqa: F401
        SETTINGS_FILE,
        SETTINGS_FILE_VAR,
        Env,
        load_document,
        parse_crypt_keys,
        read_secret_file,
        settings_document,
    )
    from jhc_menu import NAME_RE, Dataset, ImageChoice, parse_datasets, parse_images
    from jhc_values import cpu_amount, memory_bytes, normalize_login
    from jhc_variables import HubConfigError

TLS_STRATEGIES = ("insecure", "before_bind", "on_connect")
MIN_UID = 1000  # below are system accounts (and root)
MAX_UID = 2**31 - 2
SPAWNERS = ("docker", "swarm")
#: Swarm reservations as a share of the per-user limits. The scheduler places a task only on a
#: node whose unreserved memory/CPU covers the reservation and otherwise spreads tasks over the
#: eligible nodes, so the reservation is what stops a worker from taking more users than it can
#: hold. Memory: half the limit, i.e. at most 2x overcommit: idle notebooks use a fraction of
#: their limit, and a worker only runs into the OOM killer if more than half of its users hit
#: their limit at once. CPU: a quarter, because CPU contention only slows users down (CFS
#: shares), it never kills them.
MEM_RESERVATION_RATIO = 0.5
CPU_RESERVATION_RATIO = 0.25
#: User servers of the swarm run on workers only: the manager keeps the hub, Postgres, LDAP.
WORKER_CONSTRAINT = "node.role == worker"
#: <registry host[:port]>/<repository>@sha256:<64 hex>: the registry part is required, so the
#: reference never falls back to Docker Hub (Docker reads a first component with a dot or a port
#: as a registry, anything else as a Docker Hub namespace), and the digest pins the bytes.
DIGEST_REFERENCE_RE = re.compile(
    r"^(?=[^/]*[.:])[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?/[a-z0-9]+([._/-][a-z0-9]+)*@sha256:[0-9a-f]{64}$")


# --------------------------------------------------------------------------------------------
# the settings


@dataclass(frozen=True)
class SpawnSettings:
    """Everything the pre-spawn hook needs, resolved at hub start."""

    images: tuple[ImageChoice, ...]
    homes_host_dir: str
    homes_hub_dir: str
    shared_host_dir: str | None
    datasets: tuple[Dataset, ...]
    uid_map: Mapping[str, int]
    derive_uids: bool = False  # GitHub logins: uid from the registry when not in uid_map
    uid_registry_url: str | None = None  # the hub's db_url (jhc_uid_registry)
    shared_hub_dir: str | None = None  # the shared dir as mounted into the hub, if it is


@dataclass(frozen=True)
class SwarmSettings:
    """SwarmSpawner's own settings (JHC_SPAWNER=swarm), derived from the per-user limits."""

    mem_reservation: int    # bytes
    cpu_reservation: float  # CPUs
    constraints: tuple[str, ...] = (WORKER_CONSTRAINT,)


@dataclass(frozen=True)
class LdapSettings:
    server: str
    port: int
    tls_strategy: str
    ca_file: str | None
    user_base: str
    group_base: str
    allowed_groups: tuple[str, ...]
    base_dn: str = ""
    #: the read-only account's password file (jhc_revoke reads it); None = no revocation check
    readonly_password_file: str | None = None


@dataclass(frozen=True)
class GithubSettings:
    client_id: str
    client_secret: str | None  # None when files are not read
    callback_url: str
    allowed_orgs: frozenset[str]
    groups: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class DbSettings:
    host: str
    port: int
    name: str
    user: str
    password: str | None  # None when files are not read


@dataclass(frozen=True)
class HubSettings:
    """The validated settings of one hub; ``jhc_hub.configure`` turns them into traitlets."""

    hub_port: int
    connect_host: str
    public_url: str | None
    proxy_api_url: str
    proxy_token: str | None
    cookie_secret_file: str
    crypt_keys: tuple[bytes, ...]
    db: DbSettings | None
    admin_users: frozenset[str]
    allowed_users: frozenset[str]
    blocked_users: frozenset[str]
    auth: str
    ldap: LdapSettings | None
    github: GithubSettings | None
    spawn: SpawnSettings
    network: str
    pids_limit: int
    mem_limit: str | None  # as given (DockerSpawner parses it the same way); None = no limit
    cpu_limit: float | None
    start_timeout: int
    cull_timeout: int
    cull_every: int
    revoke_every: int = 60
    files_read: bool = field(default=True)
    spawner: str = "docker"
    swarm: SwarmSettings | None = None  # set iff spawner == "swarm"


def _db(env: Env, read_files: bool) -> DbSettings | None:
    host = env.raw("JHC_DB_HOST")
    if host is None:
        return None  # sqlite: tests and local trials only
    host = env.host("JHC_DB_HOST", host)
    port = env.int("JHC_DB_PORT", 5432, 1, 65535)
    name = env.str("JHC_DB_NAME", "jupyterhub")
    user = env.str("JHC_DB_USER", "jupyterhub")
    for var, value in (("JHC_DB_NAME", name), ("JHC_DB_USER", user)):
        if not re.fullmatch(r"[A-Za-z0-9_]+", value):
            raise HubConfigError(var, f"{value!r} must be letters, digits and _")
    password = env.secret_file("JHC_DB_PASSWORD_FILE", "JHC_DB_HOST is set", read_files)
    return DbSettings(host, port, name, user, password)


def _ldap(env: Env, read_files: bool) -> LdapSettings:
    base = env.required("JHC_LDAP_BASE_DN", "JHC_AUTH=ldap")
    if "=" not in base or any(ch in base for ch in "{}()*"):
        raise HubConfigError("JHC_LDAP_BASE_DN", f"{base!r} is not a DN like dc=example,dc=org")
    strategy = env.choice("JHC_LDAP_TLS_STRATEGY", "insecure", TLS_STRATEGIES)
    ca_file = None
    if strategy != "insecure":
        ca_file = env.required("JHC_LDAP_CA_FILE", f"JHC_LDAP_TLS_STRATEGY={strategy}")
    groups = env.csv("JHC_ALLOWED_GROUPS")
    for group in groups:
        if not NAME_RE.fullmatch(group.lower()):
            raise HubConfigError("JHC_ALLOWED_GROUPS", f"{group!r} is not a group name")
    readonly_file = env.raw("JHC_LDAP_READONLY_PASSWORD_FILE")
    if readonly_file is not None and read_files:  # refuse a missing/empty file at start
        read_secret_file(readonly_file, "JHC_LDAP_READONLY_PASSWORD_FILE")
    return LdapSettings(
        server=env.str("JHC_LDAP_SERVER", "ldap"),
        port=env.int("JHC_LDAP_PORT", 636 if strategy == "on_connect" else 389, 1, 65535),
        tls_strategy=strategy, ca_file=ca_file,
        user_base=env.str("JHC_LDAP_USER_BASE", f"ou=people,{base}"),
        group_base=env.str("JHC_LDAP_GROUP_BASE", f"ou=groups,{base}"),
        allowed_groups=tuple(groups), base_dn=base, readonly_password_file=readonly_file)


def _github(env: Env, public_url: str | None, allowed_users: frozenset[str],
            read_files: bool) -> GithubSettings:
    client_id = env.required("JHC_GITHUB_CLIENT_ID", "JHC_AUTH=github")
    secret = env.secret_file("JHC_GITHUB_CLIENT_SECRET_FILE", "JHC_AUTH=github", read_files)
    callback = env.url("JHC_GITHUB_CALLBACK_URL", None, ("https", "http"))
    if callback is None:
        if public_url is None:
            raise HubConfigError(
                "JHC_GITHUB_CALLBACK_URL", "is required (or JHC_PUBLIC_URL) for JHC_AUTH=github"
            )
        callback = f"{public_url}/hub/oauth_callback"
    orgs = frozenset(env.csv("JHC_GITHUB_ALLOWED_ORGS"))
    if not orgs and not allowed_users:
        raise HubConfigError(
            "JHC_GITHUB_ALLOWED_ORGS",
            "JHC_AUTH=github needs JHC_GITHUB_ALLOWED_ORGS or JHC_ALLOWED_USERS",
        )
    raw = env.json("JHC_GROUPS_JSON", {})
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in raw.items()
    ):
        raise HubConfigError("JHC_GROUPS_JSON", 'must be {"group": ["user", ...]}')
    try:
        groups = {name: tuple(sorted(normalize_login(u) for u in members))
                  for name, members in raw.items()}
    except ValueError as err:
        raise HubConfigError("JHC_GROUPS_JSON", str(err)) from None
    return GithubSettings(client_id, secret, callback, orgs, groups)


def _uid_map(env: Env) -> dict[str, int]:
    raw = env.json("JHC_UIDS_JSON", {})
    if not isinstance(raw, dict):
        raise HubConfigError("JHC_UIDS_JSON", 'must be {"user": uid, ...}')
    result: dict[str, int] = {}
    for name, uid in raw.items():
        try:
            user = normalize_login(name)
        except ValueError as err:
            raise HubConfigError("JHC_UIDS_JSON", str(err)) from None
        if not isinstance(uid, int) or isinstance(uid, bool) or not MIN_UID <= uid <= MAX_UID:
            raise HubConfigError("JHC_UIDS_JSON", f"uid of {name!r} must be {MIN_UID}..{MAX_UID}")
        result[user] = uid
    return result


def _spawn(env: Env, auth: str) -> SpawnSettings:
    images = parse_images(env.json("JHC_IMAGES_JSON", None) or None)
    homes_host = env.abspath("JHC_HOMES_HOST_DIR", "/srv/jupyterhub/homes")
    homes_hub = env.abspath("JHC_HOMES_HUB_DIR", "/homes")
    shared: str | None = None
    if env.raw("JHC_SHARED_HOST_DIR") != "none":
        shared = env.abspath("JHC_SHARED_HOST_DIR", "/srv/jupyterhub/shared")
    datasets = parse_datasets(env.json("JHC_DATASETS_JSON", []))
    assert homes_host is not None and homes_hub is not None
    return SpawnSettings(
        images=tuple(images), homes_host_dir=homes_host, homes_hub_dir=homes_hub,
        shared_host_dir=shared, datasets=tuple(datasets), uid_map=_uid_map(env),
        derive_uids=auth == "github",
        shared_hub_dir=env.abspath("JHC_SHARED_HUB_DIR", None) if shared else None)


def _limit(env: Env, name: str, default: str, parse: Any) -> Any:
    text = env.str(name, default)
    try:
        return parse(text)
    except ValueError as err:
        raise HubConfigError(name, str(err)) from None


def _swarm(env: Env, spawn: SpawnSettings, mem: int, cpu: float) -> SwarmSettings:
    """Swarm mode: digest references only, and limits to derive the reservations from."""
    for image in spawn.images:
        if not DIGEST_REFERENCE_RE.fullmatch(image.image):
            raise HubConfigError(
                "JHC_IMAGES_JSON",
                f"image {image.image!r} of {image.name!r} is not a registry digest reference "
                "(<registry>/<repository>@sha256:<digest>): with JHC_SPAWNER=swarm a worker "
                "pulls it, and a tag or a local id would send it to a public registry")
    if not mem:
        raise HubConfigError("JHC_MEM_LIMIT", "must be set with JHC_SPAWNER=swarm: the memory "
                             "reservation that spreads users over the workers is derived from it")
    if not cpu:
        raise HubConfigError("JHC_CPU_LIMIT", "must be set with JHC_SPAWNER=swarm: the CPU "
                             "reservation that spreads users over the workers is derived from it")
    return SwarmSettings(mem_reservation=int(mem * MEM_RESERVATION_RATIO),
                         cpu_reservation=cpu * CPU_RESERVATION_RATIO)


def read_settings(environ: Mapping[str, str], *, read_files: bool = True) -> HubSettings:
    """Validate the hub's variables (a settings document's content) into :class:`HubSettings`.
    Raises HubConfigError naming the variable.

    ``read_files=False``: secret and CA files are required by name but not opened (the Pulumi
    program validates at preview time, before the files exist in the container).
    """
    env = Env(environ)
    port = env.int("JHC_HUB_PORT", 8081, 1, 65535)
    connect_host = env.host("JHC_HUB_CONNECT_HOST", "jupyterhub")
    public_url = env.url("JHC_PUBLIC_URL", None, ("https", "http"))
    proxy_api = env.url("JHC_PROXY_API_URL", "http://proxy:8001", ("http", "https"))
    assert proxy_api is not None
    proxy_token = env.secret_file("JHC_PROXY_AUTH_TOKEN_FILE", "", read_files)
    cookie_path = env.required("JHC_COOKIE_SECRET_FILE")
    crypt_keys: list[bytes] = []
    if read_files:
        cookie = read_secret_file(cookie_path, "JHC_COOKIE_SECRET_FILE")
        if not re.fullmatch(r"[0-9a-fA-F]{64,}", cookie):
            raise HubConfigError("JHC_COOKIE_SECRET_FILE", "must hold >= 32 hex-encoded bytes")
        crypt_keys = parse_crypt_keys(read_secret_file(
            env.required("JHC_CRYPT_KEY_FILE"), "JHC_CRYPT_KEY_FILE"))
    else:
        env.required("JHC_CRYPT_KEY_FILE")
    db = _db(env, read_files)
    admins = env.usernames("JHC_ADMIN_USERS")
    allowed = env.usernames("JHC_ALLOWED_USERS")
    blocked = env.usernames("JHC_BLOCKED_USERS")
    auth = env.choice("JHC_AUTH", "ldap", ("ldap", "github"))
    ldap = _ldap(env, read_files) if auth == "ldap" else None
    github = _github(env, public_url, allowed, read_files) if auth == "github" else None
    spawn = _spawn(env, auth)
    mem = _limit(env, "JHC_MEM_LIMIT", "2G", memory_bytes)
    cpu = _limit(env, "JHC_CPU_LIMIT", "1", cpu_amount)
    cull_timeout = env.int("JHC_CULL_TIMEOUT", 3600, 0)
    spawner = env.choice("JHC_SPAWNER", "docker", SPAWNERS)
    swarm = _swarm(env, spawn, mem, cpu) if spawner == "swarm" else None
    return HubSettings(
        hub_port=port, connect_host=connect_host, public_url=public_url, proxy_api_url=proxy_api,
        proxy_token=proxy_token, cookie_secret_file=cookie_path, crypt_keys=tuple(crypt_keys),
        db=db, admin_users=admins, allowed_users=allowed, blocked_users=blocked, auth=auth,
        ldap=ldap, github=github, spawn=spawn,
        network=env.str("JHC_NETWORK", "jhc-frontend"),
        pids_limit=env.int("JHC_PIDS_LIMIT", 1024, 0),
        mem_limit=env.str("JHC_MEM_LIMIT", "2G") if mem else None,
        cpu_limit=cpu or None,
        start_timeout=env.int("JHC_START_TIMEOUT", 120, 10, 3600),
        cull_timeout=cull_timeout, cull_every=env.int("JHC_CULL_EVERY", 300, 0),
        revoke_every=env.int("JHC_REVOKE_EVERY", 60, 1, 86400),
        files_read=read_files, spawner=spawner, swarm=swarm)
