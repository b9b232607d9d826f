"""The hub: an image built FROM the official JupyterHub image, configured only by environment.

services/hub/jupyterhub_config.py is static and documents every variable; `hub_environment` is
the one place that decides their values, from settings alone (so it is tested without Pulumi).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import ServiceSettings
from components.containers import LABELS, Networks, attach, bind, build, secret_file

CONTEXT = "services/hub"
HOMES_IN_HUB = "/homes"
SHARED_IN_HUB = "/shared"


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


def hub_environment(service: ServiceSettings, data_dir: str, frontend: str, public_url: str,
                    images: list[dict]) -> dict[str, str]:
    """Every JHC_* variable of the hub container. None of them is a secret."""
    env = {
        "JHC_COOKIE_SECRET_FILE": "/run/secrets/cookie-secret",
        "JHC_CRYPT_KEY_FILE": "/run/secrets/crypt-key",
        "JHC_PROXY_AUTH_TOKEN_FILE": "/run/secrets/proxy-token",
        "JHC_PROXY_API_URL": "http://proxy:8001",
        "JHC_HUB_CONNECT_HOST": "jupyterhub",
        "JHC_PUBLIC_URL": public_url,
        "JHC_DB_HOST": "postgres",
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
        "JHC_CPU_LIMIT": f"{service.cpu_limit:g}",
        "JHC_CULL_TIMEOUT": str(service.cull_idle_timeout),
    }
    if service.auth == "ldap":
        env["JHC_LDAP_BASE_DN"] = service.ldap_base_dn
        env["JHC_ALLOWED_GROUPS"] = ",".join(service.allowed_groups)
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


class Hub(pulumi.ComponentResource):
    host: str = "jupyterhub"

    def __init__(self, name: str, args: HubArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Hub", name, None, opts)
        image = build(f"{name}-image", CONTEXT, f"{args.prefix}-hub:latest", self)
        envs = pulumi.Output.all(args.frontend_name, args.public_url, args.images).apply(
            lambda v: [f"{k}={val}" for k, val in
                       hub_environment(args.service, args.data_dir, v[0], v[1], v[2]).items()])
        uploads = [secret_file("cookie-secret", args.cookie_secret),
                   secret_file("crypt-key", args.crypt_key),
                   secret_file("proxy-token", args.proxy_token),
                   secret_file("db-password", args.db_password)]
        if args.service.github:
            uploads.append(secret_file("github-client-secret", args.service.github.client_secret))
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-hub", image=image.repo_digest,
            restart="unless-stopped", labels=LABELS, envs=envs, uploads=uploads,
            volumes=[
                # DockerSpawner starts user servers through the engine; only the hub has it.
                bind("/var/run/docker.sock", "/var/run/docker.sock"),
                bind(f"{args.data_dir}/homes", HOMES_IN_HUB),
                bind(f"{args.data_dir}/shared", SHARED_IN_HUB),
            ],
            networks_advanced=[attach(args.networks.backend, self.host),
                               attach(args.networks.frontend, self.host)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        self.register_outputs({})
