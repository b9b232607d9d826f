"""The Jupyter platform on a Docker host: networks, secrets and every service, wired together.

Nothing here feeds back into the host layer: changing users, images, limits or auth never
touches the VM or its data volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config import ServiceSettings, Settings
from components.platform.containers import Networks
from components.platform.hub import Hub, HubArgs
from components.platform.hub_db_backup import HubDbBackup, HubDbBackupArgs, hub_jupyterhub_version
from components.platform.ldap import Ldap, LdapArgs
from components.platform.notebook_images import NotebookImages, NotebookImagesArgs
from components.platform.postgres import Postgres, PostgresArgs
from components.platform.proxy import Proxy, ProxyArgs
from components.platform.secrets import PlatformSecrets, SecretsArgs
from components.platform.tls import Tls, TlsArgs


@dataclass(frozen=True)
class PlatformArgs:
    settings: Settings
    data_dir: str
    public_address: pulumi.Output[str]


def public_site(settings: Settings, address: str) -> tuple[str, str]:
    """(Caddy site address, the URL people open)."""
    service = settings.service
    if settings.host.cloud == "local":
        return "localhost", f"https://localhost:{service.local_https_port}"
    site = service.domain or address
    return site, f"https://{site}"


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

    def __init__(self, name: str, args: PlatformArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Platform", name, None, opts)
        settings, service = args.settings, args.settings.service
        prefix = f"jhc-{settings.stack}"
        child = pulumi.ResourceOptions(parent=self)

        backend = docker.Network(f"{name}-backend", name=f"{prefix}-backend", internal=True,
                                 opts=child)
        frontend = docker.Network(f"{name}-frontend", name=f"{prefix}-frontend", opts=child)
        networks = Networks(backend=backend.name, frontend=frontend.name)
        self.secrets = secrets = PlatformSecrets(
            f"{name}-secrets", SecretsArgs(service, settings.host.allow_data_loss), opts=child)

        postgres = Postgres(f"{name}-postgres", PostgresArgs(
            prefix, args.data_dir, networks, secrets.postgres_password), opts=child)
        ldap = Ldap(f"{name}-ldap", LdapArgs(
            prefix, args.data_dir, networks, service, secrets.ldap_admin_password,
            secrets.ldap_readonly_password, secrets.user_passwords), opts=child)
        proxy = Proxy(f"{name}-proxy", ProxyArgs(prefix, networks, secrets.proxy_token),
                      opts=child)
        images = NotebookImages(f"{name}-images", NotebookImagesArgs(prefix, service.images),
                                opts=child)
        backup = HubDbBackup(f"{name}-hub-db-backup", HubDbBackupArgs(
            prefix, args.data_dir, networks, postgres.image.repo_digest,
            secrets.postgres_password, postgres.container, hub_jupyterhub_version()), opts=child)
        # The hub's menu input waits for the dump's gate: a failed dump fails the deploy
        # before the hub (which upgrades its schema at start) is created or replaced.
        menu = pulumi.Output.all(images.menu, backup.gate).apply(lambda v: v[0])
        site_and_url = args.public_address.apply(lambda a: public_site(settings, a))
        self.url = site_and_url.apply(lambda s: s[1])
        Hub(f"{name}-hub", HubArgs(
            prefix=prefix, data_dir=args.data_dir, networks=networks,
            frontend_name=frontend.name, service=service, public_url=self.url,
            images=menu, cookie_secret=secrets.cookie_secret,
            crypt_key=crypt_keys(secrets.crypt_key, service),
            proxy_token=secrets.proxy_token, db_password=secrets.postgres_password,
            depends_on=[postgres.container, ldap.container, proxy.container,
                        backup.container]), opts=child)
        local = settings.host.cloud == "local"
        Tls(f"{name}-tls", TlsArgs(
            prefix=prefix, data_dir=args.data_dir, networks=networks,
            site=site_and_url.apply(lambda s: s[0]), acme_email=service.acme_email,
            acme_staging=service.acme_staging, bind_ip="127.0.0.1" if local else "",
            http_port=service.local_http_port if local else 80,
            https_port=service.local_https_port if local else 443), opts=child)
        self.register_outputs({"url": self.url})
