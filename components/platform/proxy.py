"""configurable-http-proxy in its own container, so a hub restart keeps user servers reachable."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.containers import LABELS, Networks, attach
from components.platform.endpoints import HUB, PROXY, PROXY_API
from components.platform.versions import PROXY_IMAGE


@dataclass(frozen=True)
class ProxyArgs:
    prefix: str
    networks: Networks
    token: pulumi.Output[str]
    overlay: pulumi.Output[str] | None = None  # Swarm mode: routes lead to servers on workers


def proxy_command(ip: str = "0.0.0.0", port: int = PROXY.port, api_port: int = PROXY_API.port,
                  hub_url: str = HUB.url()) -> list[str]:
    """configurable-http-proxy's flags: routes to the hub by default, its API for the hub only.
    The integration tests run the same command with loopback addresses and free ports."""
    return [f"--ip={ip}", f"--port={port}", f"--api-ip={ip}", f"--api-port={api_port}",
            f"--default-target={hub_url}", f"--error-target={hub_url}/hub/error"]


class Proxy(pulumi.ComponentResource):

    def __init__(self, name: str, args: ProxyArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Proxy", name, None, opts)
        image = docker.RemoteImage(f"{name}-image", name=PROXY_IMAGE, keep_locally=True,
                                   opts=pulumi.ResourceOptions(parent=self))
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-proxy", image=image.image_id,
            restart="unless-stopped", labels=LABELS,
            command=proxy_command(),
            # configurable-http-proxy reads its token only from this variable.
            envs=[args.token.apply(lambda t: f"CONFIGPROXY_AUTH_TOKEN={t}")],
            networks_advanced=[attach(args.networks.frontend, PROXY.host)] + (
                [attach(args.overlay, PROXY.host)] if args.overlay is not None else []),
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
