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
from components.host import Publishing
from components.platform.containers import Networks
from components.platform.hub import Hub, HubArgs
from components.platform.ldap import Ldap, LdapArgs
from components.platform.notebook_images import NotebookImages, NotebookImagesArgs
from components.platform.postgres import Postgres, PostgresArgs
from components.platform.proxy import Proxy, ProxyArgs
from components.platform.secrets import PlatformSecrets
from components.platform.tls import Tls, TlsArgs


@dataclass(frozen=True)
class PlatformArgs:
    stack: str
    service: ServiceSettings
    data_dir: str
    publishing: Publishing


def public_site(domain: str | None, address: str, https_port: int) -> tuple[str, str]:
    """(Caddy site address, the URL people open): the domain when there is one."""
    site = domain or address
    return site, f"https://{site}" + ("" if https_port == 443 else f":{https_port}")


class Platform(pulumi.ComponentResource):
    url: pulumi.Output[str]
    secrets: PlatformSecrets

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
        self.secrets = secrets = PlatformSecrets(f"{name}-secrets", service, opts=child)

        postgres = Postgres(f"{name}-postgres", PostgresArgs(
            prefix, args.data_dir, networks, secrets.postgres_password), opts=child)
        hub_needs = [postgres.container]
        if service.auth == "ldap":  # GitHub logins need no directory
            ldap = Ldap(f"{name}-ldap", LdapArgs(
                prefix, args.data_dir, networks, service, secrets.ldap_admin_password,
                secrets.ldap_readonly_password, secrets.user_passwords), opts=child)
            hub_needs.append(ldap.container)
        proxy = Proxy(f"{name}-proxy", ProxyArgs(prefix, networks, secrets.proxy_token),
                      opts=child)
        images = NotebookImages(f"{name}-images", NotebookImagesArgs(prefix, service.images),
                                opts=child)
        site_and_url = publishing.address.apply(
            lambda a: public_site(service.domain, a, publishing.https_port))
        self.url = site_and_url.apply(lambda s: s[1])
        Hub(f"{name}-hub", HubArgs(
            prefix=prefix, data_dir=args.data_dir, networks=networks,
            frontend_name=frontend.name, service=service, public_url=self.url,
            images=images.menu, cookie_secret=secrets.cookie_secret, crypt_key=secrets.crypt_key,
            proxy_token=secrets.proxy_token, db_password=secrets.postgres_password,
            depends_on=[*hub_needs, proxy.container],
            ldap_readonly_password=secrets.ldap_readonly_password), opts=child)
        Tls(f"{name}-tls", TlsArgs(
            prefix=prefix, data_dir=args.data_dir, networks=networks,
            site=site_and_url.apply(lambda s: s[0]), acme_email=service.acme_email,
            acme_staging=service.acme_staging, bind_ip=publishing.bind_ip,
            http_port=publishing.http_port, https_port=publishing.https_port), opts=child)
        self.register_outputs({"url": self.url})
