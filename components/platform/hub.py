"""The hub: an image built FROM the official JupyterHub image, configured by one settings file.

services/hub/jhc_variables.py declares every variable and services/hub/jhc_settings.py validates
them; `hub_environment` is the one place that decides their values, from settings alone (so it
is tested without Pulumi), and `checked_hub_environment` runs the hub's own validation on them
while the program runs (so at `pulumi preview`), naming the stack config key behind a refusal.
The hub receives them as one JSON document uploaded into its container (jhc_settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import ConfigError, ServiceSettings
from components.platform.containers import LABELS, Networks, attach, bind, build, secret_file
from components.platform.endpoints import HUB, LDAP, POSTGRES, PROXY_API
from services.hub.jhc_settings import SETTINGS_FILE, read_settings, settings_document
from services.hub.jhc_variables import BY_VARIABLE, HubConfigError

CONTEXT = "services/hub"
HOMES_IN_HUB = "/homes"
SHARED_IN_HUB = "/shared"
HUB_PORT = HUB.port
# The hub answers /hub/health once it has started (database upgraded, proxy routes checked).
# python3 is in the official image; curl is not a documented part of it.
HEALTHCHECK = ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen("
               f"'http://127.0.0.1:{HUB_PORT}/hub/health', timeout=4)"]
# Seconds `pulumi up` waits for the first healthy probe before it fails the deployment.
START_TIMEOUT = 180


@dataclass(frozen=True)
class HubArgs:
    prefix: str
    data_dir: str
    networks: Networks
    frontend_name: pulumi.Output[str]
    service: ServiceSettings
    public_url: pulumi.Output[str]
    images: pulumi.Output[list[dict]]  # the spawner menu with local image ids
    cookie_secret: pulumi.Output[str]
    crypt_key: pulumi.Output[str]
    proxy_token: pulumi.Output[str]
    db_password: pulumi.Output[str]
    depends_on: list[pulumi.Resource]
    platform: str  # the host's, e.g. linux/arm64
    # cn=readonly's password: the hub's revocation check reads accounts (never writes)
    ldap_readonly_password: pulumi.Output[str] | None = None
    # Swarm mode: the overlay the user services join (the hub joins it too), known once every
    # worker has joined; None: DockerSpawner on this host
    overlay: pulumi.Output[str] | None = None


def hub_environment(service: ServiceSettings, data_dir: str, frontend: str, public_url: str,
                    images: list[dict], swarm: bool = False) -> dict[str, str]:
    """Every JHC_* variable of the hub's settings document. None of them is a secret.

    ``frontend`` is the network of the user servers: the overlay with ``swarm``.
    """
    env = {
        "JHC_COOKIE_SECRET_FILE": "/run/secrets/cookie-secret",
        "JHC_CRYPT_KEY_FILE": "/run/secrets/crypt-key",
        "JHC_PROXY_AUTH_TOKEN_FILE": "/run/secrets/proxy-token",
        "JHC_PROXY_API_URL": PROXY_API.url(),
        "JHC_HUB_CONNECT_HOST": HUB.host,
        "JHC_HUB_PORT": str(HUB.port),
        "JHC_PUBLIC_URL": public_url,
        "JHC_DB_HOST": POSTGRES.host,
        "JHC_DB_PORT": str(POSTGRES.port),
        "JHC_DB_PASSWORD_FILE": "/run/secrets/db-password",
        "JHC_AUTH": service.auth,
        "JHC_ADMIN_USERS": ",".join(service.admins),
        "JHC_ALLOWED_USERS": ",".join(service.allowed_users),
        "JHC_BLOCKED_USERS": ",".join(service.blocked_users),
        "JHC_IMAGES_JSON": json.dumps(images, sort_keys=True),
        "JHC_NETWORK": frontend,
        "JHC_HOMES_HOST_DIR": f"{data_dir}/homes",
        "JHC_HOMES_HUB_DIR": HOMES_IN_HUB,
        "JHC_SHARED_HOST_DIR": f"{data_dir}/shared",
        "JHC_SHARED_HUB_DIR": SHARED_IN_HUB,
        "JHC_DATASETS_JSON": json.dumps([{"name": d.name, "host_path": d.path}
                                         for d in service.datasets]),
        "JHC_MEM_LIMIT": service.mem_limit,
        "JHC_CPU_LIMIT": service.cpu_limit,
        "JHC_CULL_TIMEOUT": str(service.cull_idle_timeout),
    }
    if swarm:  # absent otherwise: a single host's document stays as it always was
        env["JHC_SPAWNER"] = "swarm"
    if service.auth == "ldap":
        env["JHC_LDAP_BASE_DN"] = service.ldap_base_dn
        env["JHC_LDAP_SERVER"] = LDAP.host
        env["JHC_ALLOWED_GROUPS"] = ",".join(service.allowed_groups)
        env["JHC_LDAP_READONLY_PASSWORD_FILE"] = "/run/secrets/ldap-readonly-password"
    else:
        assert service.github is not None
        env["JHC_GITHUB_CLIENT_ID"] = service.github.client_id
        env["JHC_GITHUB_CLIENT_SECRET_FILE"] = "/run/secrets/github-client-secret"
        env["JHC_GITHUB_ALLOWED_ORGS"] = ",".join(service.github.allowed_orgs)
        # GitHub logins have no LDAP uidNumber: explicit uids here, the others from the hub's
        # uid registry (services/hub/jhc_uid_registry.py).
        env["JHC_UIDS_JSON"] = json.dumps({u.name: u.uid for u in service.users
                                           if u.uid is not None}, sort_keys=True)
        env["JHC_GROUPS_JSON"] = json.dumps(
            {g.name: [u.name for u in service.users if g.name in u.groups]
             for g in service.groups}, sort_keys=True)
    return env


def checked_hub_environment(service: ServiceSettings, data_dir: str, frontend: str,
                            public_url: str, images: list[dict],
                            swarm: bool = False) -> dict[str, str]:
    """hub_environment(...), refused as the hub would refuse it at start (its secret files are
    required by name but not read: they exist only inside the container).

    Raises ConfigError naming the stack config key that feeds the refused variable; a refused
    variable that no key feeds is a bug of this program and says so.
    """
    env = hub_environment(service, data_dir, frontend, public_url, images, swarm)
    try:
        read_settings(env, read_files=False)
    except HubConfigError as err:
        key = BY_VARIABLE[err.var].config_key
        if key is None:
            raise pulumi.RunError(f"jupyterhub-cloud sets {err} (a bug: please report it)") \
                from None
        raise ConfigError(key, f"the hub would refuse it ({err})",
                          "Fix the value (docs/hub.md lists what the hub accepts)") from None
    return env


#: Preview only: the shape of a pushed image's reference; the registry and digest are known
#: only once the registry runs and the push is done.
PREVIEW_REGISTRY = "registry.invalid:5000"
PREVIEW_DIGEST = "sha256:" + "0" * 64


def preview_menu(prefix: str, service: ServiceSettings, swarm: bool = False) -> list[dict]:
    """The spawner menu with the image names the build gives (their ids are known only after
    the build): enough to validate everything else about the menu at preview."""
    def ref(name: str) -> str:
        if swarm:
            return f"{PREVIEW_REGISTRY}/{prefix}-notebook-{name}@{PREVIEW_DIGEST}"
        return f"{prefix}-notebook-{name}:latest"
    return [{"name": i.name, "display_name": i.display_name,
             "image": ref(i.name), "groups": list(i.groups)}
            for i in service.images]


class Hub(pulumi.ComponentResource):

    def __init__(self, name: str, args: HubArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Hub", name, None, opts)
        # Checked now, with the values known before any resource exists, so that `pulumi
        # preview` fails on what the hub would refuse; checked again once outputs are known.
        swarm = args.overlay is not None
        checked_hub_environment(args.service, args.data_dir, f"{args.prefix}-frontend",
                                "https://localhost", preview_menu(args.prefix, args.service, swarm),
                                swarm)
        image = build(f"{name}-image", CONTEXT, f"{args.prefix}-hub:latest", self, args.platform)
        # One settings document instead of ~40 container variables; names no secret itself.
        servers_network = args.overlay if args.overlay is not None else args.frontend_name
        document = pulumi.Output.all(servers_network, args.public_url, args.images).apply(
            lambda v: settings_document(checked_hub_environment(
                args.service, args.data_dir, v[0], v[1], v[2], swarm)))
        uploads = [docker.ContainerUploadArgs(file=SETTINGS_FILE, content=document,
                                              permissions="0644"),
                   secret_file("cookie-secret", args.cookie_secret),
                   secret_file("crypt-key", args.crypt_key),
                   secret_file("proxy-token", args.proxy_token),
                   secret_file("db-password", args.db_password)]
        if args.service.auth == "ldap" and args.ldap_readonly_password is not None:
            uploads.append(secret_file("ldap-readonly-password", args.ldap_readonly_password))
        if args.service.github:
            uploads.append(secret_file("github-client-secret", args.service.github.client_secret))
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-hub", image=image.repo_digest,
            restart="unless-stopped", labels=LABELS, uploads=uploads,
            volumes=[
                # DockerSpawner starts user servers through the engine; only the hub has it.
                bind("/var/run/docker.sock", "/var/run/docker.sock"),
                bind(f"{args.data_dir}/homes", HOMES_IN_HUB),
                bind(f"{args.data_dir}/shared", SHARED_IN_HUB),
            ],
            networks_advanced=[attach(args.networks.backend, HUB.host),
                               attach(args.networks.frontend, HUB.host)] + (
                # Swarm mode: user servers on the workers reach the hub by this name
                [attach(args.overlay, HUB.host)] if args.overlay is not None else []),
            # A hub that cannot start fails `pulumi up` instead of restart-looping unseen:
            # with wait=True the provider polls the container's health every second after
            # starting it and fails the create unless it is "healthy" within wait_timeout s
            # (an "unhealthy" hub is not cut short); it errors when no healthcheck is set.
            # Source: terraform-provider-docker v4.5.0 (5074970), which pulumi-docker 5.1.0 to
            # 5.2.x bridges: internal/provider/resource_docker_container_funcs.go, create.
            healthcheck=docker.ContainerHealthcheckArgs(
                # no start_interval: engines older than API 1.44 do not know it
                tests=HEALTHCHECK, interval="10s", timeout="5s", retries=3,
                start_period=f"{START_TIMEOUT}s"),
            wait=True, wait_timeout=START_TIMEOUT,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        self.register_outputs({})
