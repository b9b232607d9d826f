"""Swarm mode of the platform (only with workers): the overlay network and the image registry.

User servers run as Swarm services on the workers (SwarmSpawner, services/hub/jhc_hub.py). They
join an attachable overlay network, which the hub and the proxy join as well (they must reach the
servers, and the servers the hub); Postgres and LDAP never do: they stay on the manager's
internal backend bridge, out of reach of every user server. Notebook images reach the workers
through a registry on the manager, published on its private address only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.host import Cluster
from components.platform.containers import LABELS, bind, build
from components.platform.endpoints import REGISTRY
from components.platform.engine import Engine

REGISTRY_CONTEXT = "services/registry"
REGISTRY_DATA = "/var/lib/docker-registry"  # services/registry/config.yml
CLEANUP_SCRIPT = "scripts/remove-user-services.sh"
# Seconds `pulumi up` waits for the registry's healthcheck before pushing images to it.
REGISTRY_START_TIMEOUT = 60


@dataclass(frozen=True)
class SwarmArgs:
    prefix: str
    data_dir: str
    cluster: Cluster
    engine: Engine
    platform: str  # the host's, e.g. linux/arm64


def registry_host(manager_address: str) -> str:
    """<manager's private address>:<port>: the registry part of every notebook image name."""
    return f"{manager_address}:{REGISTRY.port}"


class Swarm(pulumi.ComponentResource):
    overlay: pulumi.Output[str]   # the overlay network's name, known once the workers joined
    registry: pulumi.Output[str]  # host:port of the registry, known once it answers
    registry_container: docker.Container
    cleanup: command.local.Command

    def __init__(self, name: str, args: SwarmArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Swarm", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # An overlay can only be created on a swarm manager: its name waits for `ready`.
        overlay_name = args.cluster.ready.apply(lambda _: f"{args.prefix}-overlay")
        network = docker.Network(
            f"{name}-overlay", name=overlay_name, driver="overlay",
            # attachable: the hub and the proxy are plain containers, not services
            attachable=True,
            # IPsec (ESP) between the nodes for the overlay's VXLAN traffic; the kernel needs
            # the xfrm/esp modules (docs/admin-guide.md says where it was checked)
            options={"encrypted": "true"},
            labels=[docker.NetworkLabelArgs(label=LABELS[0].label, value=LABELS[0].value)],
            opts=child)
        self.overlay = network.name
        # Removes the user services before the overlay goes (destroy); the hub depends on it.
        self.cleanup = command.local.Command(
            f"{name}-user-service-cleanup", delete=f"bash {CLEANUP_SCRIPT}",
            environment={**args.engine.environment(), "JHC_NETWORK": network.name},
            opts=child)
        image = build(f"{name}-registry-image", REGISTRY_CONTEXT, f"{args.prefix}-registry:latest",
                      self, args.platform)
        self.registry_container = docker.Container(
            f"{name}-registry", name=f"{args.prefix}-registry", image=image.repo_digest,
            restart="unless-stopped", labels=LABELS,
            volumes=[bind(f"{args.data_dir}/registry", REGISTRY_DATA)],
            # the manager's private address only: never on a public interface
            ports=[docker.ContainerPortArgs(internal=REGISTRY.port, external=REGISTRY.port,
                                            ip=args.cluster.manager_address)],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{REGISTRY.port}"],
                interval="5s", timeout="3s", retries=3),
            wait=True, wait_timeout=REGISTRY_START_TIMEOUT,
            opts=child)
        self.registry = pulumi.Output.all(args.cluster.manager_address,
                                          self.registry_container.id).apply(
            lambda v: registry_host(v[0]))
        self.register_outputs({"overlay": self.overlay, "registry": self.registry})
