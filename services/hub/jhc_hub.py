"""The hub's traitlets configuration, from settings validated by jhc_settings.

Why a separate module: ``jupyterhub_config.py`` is executed by traitlets with ``exec``, so code
living there cannot be imported by tests or reused; it only calls :func:`configure`.

The hub's code is split by concern, one module each (all copied into the image):

* ``jhc_values``   what a login name, a memory size and a CPU amount are (shared with the
  Pulumi program);
* ``jhc_variables`` the table of every JHC_* variable (docs/hub.md is generated from it);
* ``jhc_document`` the settings document carrying them, and their typed reader;
* ``jhc_settings`` validating them -> ``HubSettings``; ``jhc_menu`` the image menu and
  datasets (all shared with the Pulumi program, which validates the same way at preview);
* ``jhc_homes``    the root-run creation of per-user homes (frozen naming contract there);
* ``jhc_spawn``    the image menu and the pre-spawn hook;
* ``jhc_ldap``     the LDAP authenticator;
* ``jhc_revoke``   the revocation check (a managed service: removed, blocked, reset accounts);
* ``jhc_hub``      (this file) the traitlets assignments.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jhc_homes import (  # noqa: F401  (re-exported: tests and tools import them from here)
    NB_GID,
    HomeDirError,
    ensure_home,
    ensure_shared,
    home_dir_for,
    normalize_username,
    validate_username,
)
from jhc_ldap import ENTRY_CSN, ldap_authenticator_class
from jhc_menu import NAME_RE, Dataset, ImageChoice, parse_datasets, parse_images  # noqa: F401
from jhc_revoke import REVOKE_SCOPES
from jhc_settings import (  # noqa: F401
    MAX_UID,
    MIN_UID,
    SETTINGS_FILE,
    SETTINGS_FILE_VAR,
    Env,
    HubSettings,
    SpawnSettings,
    load_document,
    parse_crypt_keys,
    read_secret_file,
    read_settings,
)
from jhc_spawn import (  # noqa: F401
    container_home,
    docker_spawner_class,
    images_for_groups,
    make_allowed_images,
    make_options_form,
    make_pre_spawn_hook,
    mountpoints,
    uid_from_auth_state,
    user_group_names,
    user_mounts,
)
from jhc_values import LOGIN_PATTERN, RESERVED_LOGINS
from jhc_variables import HubConfigError  # noqa: F401

#: Kept under their old names: the login-name definition lives in jhc_values.
USERNAME_PATTERN = LOGIN_PATTERN
RESERVED_USERNAMES = RESERVED_LOGINS
#: Capabilities the docker-stacks start.sh needs while it runs as root before dropping to NB_UID
#: with sudo: useradd/userdel rewrite /etc/shadow (root:shadow, so fchown -> CHOWN), sudo switches
#: uid and gid (SETUID, SETGID). No DAC_OVERRIDE: start.sh would need it only to `cd` into the
#: user's 0700 home as root, and the hook makes that home the container's working directory
#: instead (the runtime enters it before capabilities are dropped). Checked against an emulation
#: of start.sh's root path on a real engine; sudo then warns "unable to send audit message"
#: (no AUDIT_WRITE), which is harmless. After the switch the process has no capabilities.
USER_CONTAINER_CAPS = ("CHOWN", "SETUID", "SETGID")
#: The default container command of the docker-stacks images runs as root until start.sh drops
#: privileges; `no-new-privileges` is compatible because sudo is executed by uid 0 (it gains no
#: privilege from its setuid bit) and only ever lowers privileges.
USER_CONTAINER_SECURITY_OPT = ("no-new-privileges:true",)
#: The culler's permissions, as documented by jupyterhub-idle-culler (no user deletion).
CULLER_SCOPES = ("list:users", "read:users:activity", "read:servers", "delete:servers")


def _db(c: Any, s: HubSettings) -> None:
    if s.db is None:
        c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"  # tests and local trials only
        return
    # The password must be in the URL: on a fresh database JupyterHub stamps the schema
    # with alembic, which builds its own engine from the URL alone, so a password given as
    # a connect argument is lost there ("fe_sendauth: no password supplied"; found by
    # tests/integration). JupyterHub redacts it when it logs the URL, SQLAlchemy masks it.
    quoted = urllib.parse.quote(s.db.password or "", safe="")
    c.JupyterHub.db_url = (
        f"postgresql+psycopg2://{s.db.user}:{quoted}@{s.db.host}:{s.db.port}/{s.db.name}"
    )


def _ldap(c: Any, s: HubSettings) -> None:
    ldap = s.ldap
    assert ldap is not None
    c.JupyterHub.authenticator_class = ldap_authenticator_class()
    a = c.LDAPAuthenticator
    a.server_address = ldap.server
    a.server_port = ldap.port
    a.tls_strategy = ldap.tls_strategy
    if ldap.tls_strategy != "insecure":
        import ssl

        # ldap3's Tls() does not validate certificates unless told to
        a.tls_kwargs = {"validate": ssl.CERT_REQUIRED, "ca_certs_file": ldap.ca_file}
    # Bind as the user with a fixed DN template: the password is checked by the directory
    # itself and the hub holds no directory credential at all. A lookup through a service
    # account would put a password in the hub and a search in the login path for no gain,
    # since this project writes every user at uid=<name>,<user base>.
    a.lookup_dn = False
    a.bind_dn_template = [f"uid={{username}},{ldap.user_base}"]
    a.user_search_base = ldap.user_base
    a.user_attribute = "uid"
    a.valid_username_regex = LOGIN_PATTERN
    a.use_lookup_dn_username = False
    # entryCSN: slapd's change stamp of the entry at login; jhc_revoke compares it
    a.auth_state_attributes = ["uid", "uidNumber", "gidNumber", ENTRY_CSN]
    c.JhcLDAPAuthenticator.group_search_base = ldap.group_base
    a.allowed_groups = [f"cn={group},{ldap.group_base}" for group in ldap.allowed_groups]
    a.group_search_filter = "(&(objectClass=posixGroup)(memberUid={uid}))"
    a.group_attributes = ["memberUid"]
    c.Authenticator.manage_groups = True
    # every LDAP account is a platform user declared in stack config; without other allow
    # rules, having an account (and the right password) is the allow rule
    c.Authenticator.allow_all = not ldap.allowed_groups and not s.allowed_users


def _github(c: Any, s: HubSettings) -> None:
    from oauthenticator.github import GitHubOAuthenticator

    github = s.github
    assert github is not None
    c.JupyterHub.authenticator_class = GitHubOAuthenticator
    g = c.GitHubOAuthenticator
    g.client_id = github.client_id
    g.client_secret = github.client_secret
    g.oauth_callback_url = github.callback_url
    g.allowed_organizations = set(github.allowed_orgs)
    if github.allowed_orgs:
        g.scope = ["read:org"]  # else only public org membership is visible
    # oauthenticator >= 16 admits nobody without an allow rule; allow_all is never used here
    g.allow_all = False
    c.JupyterHub.load_groups = {
        name: {"users": list(members)} for name, members in github.groups.items()
    }


def _spawner(c: Any, s: HubSettings) -> None:
    images = list(s.spawn.images)
    # DockerSpawner, except that an interrupted spawn counts as stopped (jhc_spawn)
    c.JupyterHub.spawner_class = docker_spawner_class(swarm=s.swarm is not None)
    d = c.DockerSpawner
    d.image = images[0].image  # replaced per user by the pre-spawn hook
    d.allowed_images = make_allowed_images(images)
    d.options_form = make_options_form(images)
    d.pull_policy = "never"  # images are built on the host; nothing is pulled
    d.network_name = s.network
    d.use_internal_ip = True
    d.remove = True  # containers are disposable; the data is in the bind mounts
    d.volumes = {}
    d.read_only_volumes = {}
    d.extra_create_kwargs = {"user": "root"}  # docker-stacks start.sh drops to NB_UID
    host_config: dict[str, Any] = {
        "security_opt": list(USER_CONTAINER_SECURITY_OPT),
        "cap_drop": ["ALL"],
        "cap_add": list(USER_CONTAINER_CAPS),
    }
    if s.pids_limit:
        host_config["pids_limit"] = s.pids_limit
    d.extra_host_config = host_config
    if s.mem_limit is not None:
        d.mem_limit = s.mem_limit
    if s.cpu_limit is not None:
        d.cpu_limit = s.cpu_limit

    if s.swarm is not None:
        _swarm_spawner(c, s)

    sp = c.Spawner
    sp.pre_spawn_hook = make_pre_spawn_hook(
        dataclasses.replace(s.spawn, uid_registry_url=c.JupyterHub.db_url))
    sp.disable_user_config = True
    sp.env_keep = []  # nothing from the hub's environment reaches user containers
    sp.environment = {}
    sp.start_timeout = s.start_timeout
    sp.http_timeout = s.start_timeout


def _swarm_spawner(c: Any, s: HubSettings) -> None:
    """SwarmSpawner's own traitlets; the DockerSpawner ones above apply to it too (a subclass),
    except where this section overrides them. Read against dockerspawner 14.0.0
    swarmspawner.py: create_object builds ContainerSpec(image, env, args, mounts) +
    extra_container_spec, Resources(mem_limit, mem_reservation=mem_guarantee, cpu_limit,
    cpu_reservation=cpu_guarantee), Placement + extra_placement_spec, TaskTemplate(networks=
    [network_name]) + extra_task_spec, EndpointSpec + extra_endpoint_spec, and passes
    extra_create_kwargs to create_service (not to a container)."""
    assert s.swarm is not None
    w = c.SwarmSpawner
    # The manager holds no notebook image: each worker pulls the digest from the registry.
    w.pull_policy = "skip"
    w.extra_create_kwargs = {}   # create_service kwargs: nothing extra
    w.extra_host_config = {}     # unused by SwarmSpawner; its equivalents are below
    # Today's container hardening, as far as a service spec can carry it: started as root only
    # for docker-stacks' start.sh, every capability dropped but the three it needs, never
    # privileged (a service cannot be), no Docker socket (no such mount is ever listed), the
    # memory/CPU limits (DockerSpawner traitlets) and the process limit (JhcSwarmSpawner).
    # Not expressible: no-new-privileges. docker-py 7.1's Privileges has no such field and
    # Debian 12's engine (20.10, API 1.41) has none for services; docs/hub.md says so.
    w.extra_container_spec = {"user": "root", "cap_add": list(USER_CONTAINER_CAPS),
                              "cap_drop": ["ALL"]}
    c.JhcSwarmSpawner.pids_limit = s.pids_limit
    # DNS round robin: the service name resolves straight to the task's address on the overlay.
    # A virtual IP needs IPVS in every node's kernel and adds a load balancer in front of a
    # service that only ever has one task; dnsrr needs neither (and the test machine has no IPVS).
    w.extra_endpoint_spec = {"mode": "dnsrr"}
    w.extra_placement_spec = {"constraints": list(s.swarm.constraints)}
    # A server that exits stays stopped, as with DockerSpawner (the hub decides about restarts;
    # the engine's default restart condition for services is "any").
    w.extra_task_spec = {"restart_policy": {"Condition": "none"}}
    w.mem_guarantee = s.swarm.mem_reservation
    w.cpu_guarantee = s.swarm.cpu_reservation


def _services(c: Any, s: HubSettings) -> None:
    services: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    if s.cull_timeout:
        command = [sys.executable, "-m", "jupyterhub_idle_culler",
                   f"--timeout={s.cull_timeout}"]
        if s.cull_every:
            command.append(f"--cull-every={s.cull_every}")
        services.append({"name": "idle-culler", "command": command})
        roles.append({"name": "idle-culler", "description": "Stop idle user servers",
                      "scopes": list(CULLER_SCOPES), "services": ["idle-culler"]})
    if s.ldap is not None and s.ldap.readonly_password_file:
        # the script beside this module (copied into the image with it); it reads the same
        # settings document, so the environment names only that document
        script = str(Path(__file__).resolve().parent / "jhc_revoke.py")
        services.append({
            "name": "revoke", "command": [sys.executable, script],
            "environment": {SETTINGS_FILE_VAR: os.environ.get(SETTINGS_FILE_VAR)
                            or SETTINGS_FILE}})
        roles.append({"name": "revoke",
                      "description": "End sessions, tokens and servers of revoked accounts",
                      "scopes": list(REVOKE_SCOPES), "services": ["revoke"]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def apply(c: Any, s: HubSettings) -> None:
    """Assign the traitlets of config ``c`` from validated settings (files read)."""
    assert s.files_read, "the hub needs its secret files read"
    # hub <-> proxy <-> user containers
    c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{s.hub_port}"
    c.JupyterHub.hub_connect_url = f"http://{s.connect_host}:{s.hub_port}"
    c.JupyterHub.bind_url = "http://:8000"  # where the proxy container listens
    if s.public_url:
        c.JupyterHub.public_url = s.public_url
    c.JupyterHub.proxy_class = "configurable-http-proxy"
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = s.proxy_api_url
    c.ConfigurableHTTPProxy.auth_token = s.proxy_token
    # the proxy and the user containers outlive a hub restart
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.JupyterHub.allow_named_servers = False  # one container per user <-> one home
    c.JupyterHub.authenticate_prometheus = True

    # secrets and state
    c.JupyterHub.cookie_secret_file = s.cookie_secret_file
    c.CryptKeeper.keys = list(s.crypt_keys)
    c.Authenticator.enable_auth_state = True
    _db(c, s)
    # A schema older than this JupyterHub is upgraded at start (jupyterhub/app.py init_db ->
    # dbutil.upgrade_if_needed: orm.check_db_revision, then alembic upgrade on a mismatch; an
    # empty database is stamped). Safe because Pulumi dumps the database first whenever the
    # hub's JupyterHub version changes (components/platform/hub_db_backup.py).
    c.JupyterHub.upgrade_db = True

    # who may log in
    c.Authenticator.username_pattern = LOGIN_PATTERN
    c.Authenticator.admin_users = set(s.admin_users)
    # admins are always allowed (JupyterHub does the same once any allow list is set)
    c.Authenticator.allowed_users = (
        set(s.allowed_users | s.admin_users) if s.allowed_users else set()
    )
    c.Authenticator.blocked_users = set(s.blocked_users)
    # the allow list is authoritative: removing a name from it revokes access even though
    # the user still exists in the hub database
    c.Authenticator.allow_existing_users = False
    if s.auth == "ldap":
        _ldap(c, s)
    else:
        _github(c, s)

    _spawner(c, s)
    _services(c, s)


def configure(c: Any, environ: Mapping[str, str]) -> None:
    """Fill the traitlets config ``c`` from the settings document that ``environ`` points at
    (jhc_settings.load_document). Raises HubConfigError on bad input."""
    apply(c, read_settings(load_document(environ)))
