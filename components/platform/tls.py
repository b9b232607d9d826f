"""Caddy in front: the only container publishing ports (80 and 443), HTTP redirected to HTTPS."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.containers import LABELS, Networks, attach, bind
from components.platform.endpoints import CADDY_ALIAS
from components.platform.templates import render_caddyfile
from components.platform.versions import CADDY_IMAGE


@dataclass(frozen=True)
class TlsArgs:
    prefix: str
    data_dir: str
    networks: Networks
    site: pulumi.Output[str]  # the domain, or the public address for the internal CA
    acme_email: str | None
    acme_staging: bool
    bind_ip: str              # "" for all interfaces, 127.0.0.1 on the local stack
    http_port: int
    https_port: int


class Tls(pulumi.ComponentResource):
    def __init__(self, name: str, args: TlsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Tls", name, None, opts)
        image = docker.RemoteImage(f"{name}-image", name=CADDY_IMAGE, keep_locally=True,
                                   opts=pulumi.ResourceOptions(parent=self))
        caddyfile = args.site.apply(
            lambda site: render_caddyfile(site, args.acme_email, args.acme_staging))
        ports = [docker.ContainerPortArgs(internal=internal, external=external,
                                          ip=args.bind_ip or None)
                 for internal, external in ((80, args.http_port), (443, args.https_port))]
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-caddy", image=image.image_id,
            restart="unless-stopped", labels=LABELS, ports=ports,
            uploads=[docker.ContainerUploadArgs(file="/etc/caddy/Caddyfile", content=caddyfile)],
            # Certificates and ACME account: kept on the data volume, so rebuilt stacks do not
            # hit Let's Encrypt's rate limits.
            volumes=[bind(f"{args.data_dir}/state/caddy", "/data")],
            networks_advanced=[attach(args.networks.frontend, CADDY_ALIAS)],
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
