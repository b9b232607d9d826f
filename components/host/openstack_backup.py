"""OpenStack side of backups: a Swift container and an application credential limited to it.

Host layer (it imports pulumi_openstack); the OpenStackHost hands the container to the platform
as a BackupTarget. What the cloud allows: Keystone application credentials with access rules
(Keystone >= Train) restrict the credential to the listed Swift requests on this container —
but only where Swift's keystonemiddleware enforces access rules (its `service_type` option is
set), which some clouds do not configure; there the credential carries the creating user's
roles on the whole project. Nothing in the API tells the two apart, so the admin guide says so.
Arguments checked with inspect.signature against pulumi-openstack 5.5.3 and the provider docs
(pulumi.com/registry/packages/openstack/api-docs/identity/applicationcredential).
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_openstack as openstack

from components.host import BackupTarget

METHODS = ("GET", "HEAD", "PUT", "DELETE")  # what restic's swift backend sends
# restic's swift backend authenticates with OS_AUTH_URL + OS_APPLICATION_CREDENTIAL_ID/_SECRET
# (restic/restic#2156, merged 2019: Debian 12's restic 0.14 has it).


def container_name(stack: str) -> str:
    return "jhc-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", stack).strip("-") or "stack") + "-backups"


def access_rules(project_id: str, container: str) -> list[dict[str, str]]:
    """Requests on this container and its objects only (Keystone access-rule path wildcards)."""
    base = f"/v1/AUTH_{project_id}/{container}"
    return [{"service": "object-store", "method": method, "path": path}
            for method in METHODS for path in (base, f"{base}/**")]


def identity_url(catalog: list[Any]) -> str:
    """The public Keystone endpoint from the token's service catalog (restic's OS_AUTH_URL)."""
    for service in catalog or []:
        if service.get("type") == "identity":
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") == "public":
                    return endpoint["url"]
    raise pulumi.RunError("the OpenStack service catalog has no public identity endpoint; set "
                          "backupRepository and backupRepositoryEnv instead")


def swift_backup_target(name: str, stack: str, keep: pulumi.ResourceOptions,
                        parent: pulumi.Resource) -> BackupTarget:
    child = pulumi.ResourceOptions(parent=parent)
    scope = openstack.identity.get_auth_scope_output(
        name="current", opts=pulumi.InvokeOptions(parent=parent))
    # Holds the backups: protected and retained like the data volume; never force-destroyed.
    container = openstack.objectstorage.Container(
        f"{name}-swift", name=container_name(stack), force_destroy=False,
        metadata={"jupyterhub-cloud": "backups"}, opts=keep)
    # The SDK marks its generated `secret` as a secret output (additional_secret_outputs).
    credential = openstack.identity.ApplicationCredential(
        f"{name}-credential", name=f"jhc-{stack}-backup",
        description="jupyterhub-cloud backups: restic on this stack's Swift container only",
        access_rules=pulumi.Output.all(scope.project_id, container.name).apply(
            lambda v: access_rules(v[0], v[1])),
        opts=child)
    env = pulumi.Output.secret(pulumi.Output.all(
        credential.id, credential.secret, scope.service_catalogs, scope.region).apply(
        lambda v: {"OS_AUTH_URL": identity_url(v[2]), "OS_APPLICATION_CREDENTIAL_ID": v[0],
                   "OS_APPLICATION_CREDENTIAL_SECRET": v[1],
                   **({"OS_REGION_NAME": v[3]} if v[3] else {})}))
    return BackupTarget(container.name.apply(lambda c: f"swift:{c}:/"), env, None)
