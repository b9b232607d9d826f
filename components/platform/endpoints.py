"""Where each service answers on the platform's Docker networks: the one place for names and ports.

The names are network aliases; the hub, the proxy, Caddy and the LDAP reconcile reach each other
through them, so a name or port written anywhere else is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.host import REGISTRY_PORT


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}"


POSTGRES = Endpoint("postgres", 5432)
LDAP = Endpoint("ldap", 389)
HUB = Endpoint("jupyterhub", 8081)
PROXY = Endpoint("proxy", 8000)          # what Caddy forwards to
PROXY_API = Endpoint("proxy", 8001)      # the hub's route API
CADDY_ALIAS = "caddy"
#: Swarm mode: the image registry on the manager, published on the manager's private address
#: only (the host layer opens this port to the stack's own nodes).
REGISTRY = Endpoint("registry", REGISTRY_PORT)
