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
