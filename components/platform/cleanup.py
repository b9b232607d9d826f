"""The destroy-time step that removes user servers before the frontend network goes.

DockerSpawner's containers are not Pulumi's, but they sit on the frontend network, and Docker
refuses to remove a network with active endpoints (the provider gives up after its retries), so
`pulumi destroy` failed while anyone had a server running. This step has no create; its delete
(scripts/remove-user-servers.sh) runs when Pulumi deletes it: after the hub (which depends on it,
so no new server starts meanwhile) and before the network (which it depends on). Pulumi deletes
dependents before their dependencies (pulumi docs, "dependsOn").
"""

from __future__ import annotations

import pulumi
import pulumi_command as command

from components.platform.containers import LABELS
from components.platform.engine import Engine

SCRIPT = "scripts/remove-user-servers.sh"


def user_server_cleanup(name: str, engine: Engine, network: pulumi.Output[str],
                        parent: pulumi.Resource) -> command.local.Command:
    return command.local.Command(
        name, delete=f"bash {SCRIPT}",
        environment={**engine.environment(), "JHC_NETWORK": network,
                     "JHC_MANAGED_LABEL": LABELS[0].label},
        opts=pulumi.ResourceOptions(parent=parent))
