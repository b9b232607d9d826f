"""The one inbound policy every cloud host gets: SSH from the admins, HTTP and HTTPS from anywhere."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

PUBLIC_PORTS = (80, 443)
SSH_PORT = 22


@dataclass(frozen=True)
class Ingress:
    port: int
    cidr: str
    label: str  # stable resource-name suffix

    @property
    def ethertype(self) -> str:
        return "IPv6" if ipaddress.ip_network(self.cidr).version == 6 else "IPv4"


def ingress_rules(admin_cidrs: tuple[str, ...]) -> list[Ingress]:
    """Names are derived from the CIDR, not the list position, so reordering changes nothing."""
    rules = [Ingress(SSH_PORT, cidr, f"ssh-{_slug(cidr)}") for cidr in admin_cidrs]
    for port in PUBLIC_PORTS:
        rules += [Ingress(port, "0.0.0.0/0", f"{port}-v4"), Ingress(port, "::/0", f"{port}-v6")]
    return rules


def _slug(cidr: str) -> str:
    return cidr.replace(".", "-").replace(":", "-").replace("/", "_")


# --- swarm workers: traffic between the stack's own nodes only ---------------------------------
# Docker's swarm ports (docs.docker.com "Use overlay networks" / swarm tutorial): 2377/tcp cluster
# management (to the manager), 7946/tcp+udp node gossip and 4789/udp VXLAN between all nodes, and
# IP protocol 50 (ESP) for overlay networks created with encryption. Plus NFSv4 (2049/tcp) and
# the platform's registry (5000/tcp) on the manager, and SSH to the workers from the manager
# (the operator's jump host). Every rule names a security group as its source, never a CIDR.
MANAGER, WORKER = "manager", "worker"
SWARM_MANAGEMENT_PORT = 2377
NFS_PORT = 2049
REGISTRY_PORT = 5000
_BETWEEN_ALL: tuple[tuple[str, int | None], ...] = (
    ("tcp", 7946), ("udp", 7946), ("udp", 4789), ("esp", None))


@dataclass(frozen=True)
class NodeIngress:
    """Inbound to the group of `to` from every member of the group of `source`."""

    to: str
    source: str
    protocol: str     # tcp, udp or esp (Neutron takes the name "esp", python-openstackclient
                      # "security group rule create --protocol"; AWS the number, aws_workers.ESP)
    port: int | None  # None: the whole protocol (ESP has no ports)

    @property
    def label(self) -> str:
        """Stable resource-name suffix."""
        return f"{self.to}-from-{self.source}-{self.protocol}{self.port or ''}"


def node_rules() -> list[NodeIngress]:
    rules = [NodeIngress(MANAGER, WORKER, "tcp", port)
             for port in (SWARM_MANAGEMENT_PORT, NFS_PORT, REGISTRY_PORT)]
    rules.append(NodeIngress(WORKER, MANAGER, "tcp", SSH_PORT))
    for to, source in ((MANAGER, WORKER), (WORKER, MANAGER), (WORKER, WORKER)):
        rules += [NodeIngress(to, source, protocol, port) for protocol, port in _BETWEEN_ALL]
    return rules
