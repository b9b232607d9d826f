"""LDAP: the project's slapd image, and a one-shot reconcile that makes it match the stack's users.

The reconcile is a command (scripts/ldap-reconcile.sh) that runs the reconcile tool inside the LDAP
container, fed the desired document (a secret) on stdin. It runs again whenever the declared
users, groups or passwords change, and it fails the deploy with the tool's own report. A failed
run is retried by the next `pulumi up` without any input change: pulumi-command records a failed
create as a resource with initialization errors (its Create returns the id with the error), the
engine gives such a resource an update on the next deployment ("If resource was unchanged, but
there were initialization errors, generate an empty update step", pulumi/pulumi step_generator),
and pulumi-command's Update runs the create command when no update command is set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.config import ServiceSettings
from components.config.accounts import USERS_GID
from components.platform.containers import LABELS, Networks, attach, bind, build, secret_file
from components.platform.endpoints import LDAP
from components.platform.engine import Engine
from services.ldap.desired import desired_state

CONTEXT = "services/ldap"
RECONCILE_SCRIPT = "scripts/ldap-reconcile.sh"


@dataclass(frozen=True)
class LdapArgs:
    prefix: str
    data_dir: str
    networks: Networks
    service: ServiceSettings
    admin_password: pulumi.Output[str]
    readonly_password: pulumi.Output[str]
    user_passwords: pulumi.Output[dict[str, str]]  # secret
    platform: str  # the host's, e.g. linux/arm64
    engine: Engine


def desired_document(service: ServiceSettings, passwords: dict[str, str]) -> str:
    """The reconcile input: declared users and groups with their passwords (a secret file)."""
    users = [{"name": u.name, "uid": u.uid, "gid": USERS_GID, "cn": u.full_name,
              "password": passwords[u.name], **({"mail": u.email} if u.email else {})}
             for u in service.users]
    groups = [{"name": g.name, "gid": g.gid,
               "members": [u.name for u in service.users if g.name in u.groups]}
              for g in service.groups]
    return json.dumps(desired_state(service.ldap_base_dn, users, groups, server=LDAP.url("ldap")),
                      sort_keys=True)


class Ldap(pulumi.ComponentResource):

    def __init__(self, name: str, args: LdapArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Ldap", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = build(f"{name}-image", CONTEXT, f"{args.prefix}-ldap:latest", self, args.platform)
        admin_file = secret_file("ldap-admin-password", args.admin_password)
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-ldap", image=image.repo_digest,
            restart="unless-stopped", labels=LABELS,
            envs=[f"LDAP_BASE_DN={args.service.ldap_base_dn}",
                  f"LDAP_ORGANISATION={args.service.ldap_organisation}",
                  "LDAP_ADMIN_PASSWORD_FILE=/run/secrets/ldap-admin-password",
                  "LDAP_READONLY_PASSWORD_FILE=/run/secrets/ldap-readonly-password"],
            uploads=[admin_file, secret_file("ldap-readonly-password", args.readonly_password)],
            volumes=[bind(f"{args.data_dir}/state/ldap/config", "/etc/ldap/slapd.d"),
                     bind(f"{args.data_dir}/state/ldap/data", "/var/lib/ldap")],
            networks_advanced=[attach(args.networks.backend, LDAP.host)],
            wait=True, wait_timeout=120, opts=child)

        document = args.user_passwords.apply(
            lambda passwords: desired_document(args.service, passwords))
        self.reconcile = command.local.Command(
            f"{name}-reconcile", create=f"bash {RECONCILE_SCRIPT}",
            stdin=pulumi.Output.secret(document),
            environment={**args.engine.environment(), "JHC_LDAP_CONTAINER": self.container.name},
            # A new LDAP container (e.g. on a new engine) is reconciled again.
            triggers=[self.container.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]))
        self.register_outputs({})
