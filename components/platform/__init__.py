"""The Jupyter platform on a Docker host: networks, secrets and every service, wired together.

Nothing here feeds back into the host layer, and nothing here asks which cloud it runs on: the host
hands over a data directory and how the platform is published. Changing users, images, limits or
auth never touches the VM or its data volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import ServiceSettings
from components.host import BackupTarget, Cluster, Publishing
from components.platform.backup import Backup, BackupArgs
from components.platform.cleanup import user_server_cleanup
from components.platform.containers import Networks
from components.platform.engine import Engine
from components.platform.hub import Hub, HubArgs
from components.platform.hub_db_backup import HubDbBackup, HubDbBackupArgs, hub_jupyterhub_version
from components.platform.ldap import Ldap, LdapArgs
from components.platform.notebook_images import NotebookImages, NotebookImagesArgs
from components.platform.postgres import Postgres, PostgresArgs
from components.platform.proxy import Proxy, ProxyArgs
from components.platform.secrets import PlatformSecrets, SecretsArgs
from components.platform.swarm import Swarm, SwarmArgs
from components.platform.tls import Tls, TlsArgs


@dataclass(frozen=True)
class PlatformArgs:
    stack: str
    service: ServiceSettings
    data_dir: str
    publishing: Publishing
    keep_state: bool  # state the data depends on (generated secrets) is protected and retained
    engine: Engine    # the Docker engine everything is deployed to, and how scripts reach it
    build_platform: str  # the host's CPU, e.g. linux/arm64: images are built for it
    backup_target: BackupTarget | None = None  # from the host; None: backups off
    cluster: Cluster | None = None


def public_site(domain: str | None, address: str, https_port: int) -> tuple[str, str]:
    """(Caddy site address, the URL people open): the domain when there is one."""
    site = domain or address
    return site, f"https://{site}" + ("" if https_port == 443 else f":{https_port}")


def crypt_keys(generated: pulumi.Output[str], service: ServiceSettings) -> pulumi.Output[str]:
    """The hub's auth-state key file: the generated key first (JupyterHub encrypts with it),
    then hubPreviousCryptKeys, which it only decrypts with (jupyterhub/crypto.py CryptKeeper:
    MultiFernet over all keys; jupyterhub/user.py re-saves auth_state read with several keys)."""
    if service.previous_crypt_keys is None:
        return generated
    return pulumi.Output.all(generated, service.previous_crypt_keys).apply(
        lambda keys: f"{keys[0]};{keys[1]}")


class Platform(pulumi.ComponentResource):
    url: pulumi.Output[str]
    secrets: PlatformSecrets
    backup: Backup | None = None
    backup: Backup | None = None

    def __init__(self, name: str, args: PlatformArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Platform", name, None, opts)
        service, publishing = args.service, args.publishing
        prefix = f"jhc-{args.stack}"
        child = pulumi.ResourceOptions(parent=self)

        backend = docker.Network(f"{name}-backend", name=f"{prefix}-backend", internal=True,
                                 opts=child)
        frontend = docker.Network(f"{name}-frontend", name=f"{prefix}-frontend", opts=child)
        networks = Networks(backend=backend.name, frontend=frontend.name)
        cleanup = user_server_cleanup(f"{name}-user-server-cleanup", args.engine, frontend.name,
                                      self)
        self.secrets = secrets = PlatformSecrets(
            f"{name}-secrets", SecretsArgs(service, keep=args.keep_state), opts=child)

        # Swarm mode (workers exist): user servers on the workers, images from a registry
        swarm = None if args.cluster is None else Swarm(f"{name}-cluster", SwarmArgs(
            prefix, args.data_dir, args.cluster, args.engine, args.build_platform), opts=child)
        overlay = None if swarm is None else swarm.overlay
        postgres = Postgres(f"{name}-postgres", PostgresArgs(
            prefix, args.data_dir, networks, secrets.postgres_password, args.build_platform),
            opts=child)
        hub_needs = [postgres.container]
        if service.auth == "ldap":  # GitHub logins need no directory
            ldap = Ldap(f"{name}-ldap", LdapArgs(
                prefix, args.data_dir, networks, service, secrets.ldap_admin_password,
                secrets.ldap_readonly_password, secrets.user_passwords, args.build_platform,
                args.engine), opts=child)
            hub_needs.append(ldap.container)
        proxy = Proxy(f"{name}-proxy", ProxyArgs(prefix, networks, secrets.proxy_token,
                                                 overlay), opts=child)
        images = NotebookImages(f"{name}-images", NotebookImagesArgs(
            prefix, service.images, args.build_platform,
            registry=None if swarm is None else swarm.registry,
            depends_on=None if swarm is None else [swarm.registry_container]), opts=child)
        hub_db_dump = HubDbBackup(f"{name}-hub-db-backup", HubDbBackupArgs(
            prefix, args.data_dir, networks, postgres.image.repo_digest,
            secrets.postgres_password, postgres.container, hub_jupyterhub_version()), opts=child)
        # The hub's menu input waits for the dump's gate: a failed dump fails the deploy
        # before the hub (which upgrades its schema at start) is created or replaced.
        menu = pulumi.Output.all(images.menu, hub_db_dump.gate).apply(lambda v: v[0])
        site_and_url = publishing.address.apply(
            lambda a: public_site(service.domain, a, publishing.https_port))
        self.url = site_and_url.apply(lambda s: s[1])
        hub = Hub(f"{name}-hub", HubArgs(
            prefix=prefix, data_dir=args.data_dir, networks=networks,
            frontend_name=frontend.name, service=service, public_url=self.url,
            images=menu, cookie_secret=secrets.cookie_secret,
            crypt_key=crypt_keys(secrets.crypt_key, service),
            proxy_token=secrets.proxy_token, db_password=secrets.postgres_password,
            # The hub goes before the cleanup step, which removes user servers before the network.
            depends_on=[*hub_needs, proxy.container, cleanup, hub_db_dump.container,
                        *([] if swarm is None else [swarm.cleanup])],
            platform=args.build_platform,
            ldap_readonly_password=secrets.ldap_readonly_password, overlay=overlay), opts=child)
        Tls(f"{name}-tls", TlsArgs(
            prefix=prefix, data_dir=args.data_dir, networks=networks,
            site=site_and_url.apply(lambda s: s[0]), acme_email=service.acme_email,
            acme_staging=service.acme_staging, bind_ip=publishing.bind_ip,
            http_port=publishing.http_port, https_port=publishing.https_port), opts=child)
        if args.backup_target is not None and service.backup.enabled:
            self.backup = Backup(f"{name}-backup", BackupArgs(
                prefix=prefix, stack=args.stack, data_dir=args.data_dir, networks=networks,
                settings=service.backup, target=args.backup_target, keep=args.keep_state,
                with_ldap=service.auth == "ldap", platform=args.build_platform,
                postgres_password=secrets.postgres_password, cookie_secret=secrets.cookie_secret,
                crypt_key=secrets.crypt_key, depends_on=[*hub_needs, hub.container]), opts=child)
        self.register_outputs({"url": self.url})
