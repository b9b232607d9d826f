"""Every generated secret of a deployment, created once and kept in the (encrypted) Pulumi state.

Kept like the data (protected, retained on delete) unless the stack sets `allowDataLoss: true`,
because their values exist only in the state: `pulumi destroy --exclude-protected` destroys only
unprotected resources and keeps protected ones, and the parents of protected ones, in the state
(pulumi/pulumi#8359), so the next `pulumi up` reuses the same values. A protected resource cannot be
deleted or replaced by any deployment until it is unprotected
(https://www.pulumi.com/docs/iac/concepts/resources/options/protect/). retain_on_delete only skips
the provider's Delete and drops the resource from the state
(https://www.pulumi.com/docs/iac/concepts/resources/options/retainondelete/): for these
state-only resources it keeps nothing by itself; it is set so that data and secrets follow one policy.

Losing them anyway (a new stack on `existingDataVolumeId`, `allowDataLoss: true`, a lost state) no
longer locks anyone out: Postgres, LDAP and the hub converge to the secrets they are given at every
start (services/postgres, services/ldap/entrypoint.sh, docs/admin-guide.md "Rotate secrets").
Keepers are never used: a keeper change would regenerate a secret on an ordinary `up`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.config import ServiceSettings


@dataclass(frozen=True)
class SecretsArgs:
    service: ServiceSettings
    keep: bool  # not allowDataLoss: one policy for the data and the secrets it depends on


class PlatformSecrets(pulumi.ComponentResource):
    postgres_password: pulumi.Output[str]
    ldap_admin_password: pulumi.Output[str]
    ldap_readonly_password: pulumi.Output[str]
    proxy_token: pulumi.Output[str]
    cookie_secret: pulumi.Output[str]
    crypt_key: pulumi.Output[str]
    user_passwords: dict[str, pulumi.Output[str]]
    generated_passwords: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SecretsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:PlatformSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=args.keep, retain_on_delete=args.keep)
        # Initial user passwords are not protected: a protected resource cannot be deleted by
        # any deployment (pulumi docs, "protect"), so removing a user from `users` would fail
        # `pulumi up`. Losing one is harmless: the reconcile sets the newly generated one.
        user = pulumi.ResourceOptions(parent=self)

        def password(role: str, length: int = 32,
                     opts: pulumi.ResourceOptions = child) -> pulumi.Output[str]:
            return random.RandomPassword(f"{name}-{role}", length=length, special=False,
                                         opts=opts).result

        def hex_key(role: str) -> pulumi.Output[str]:
            return random.RandomBytes(f"{name}-{role}", length=32, opts=child).hex

        self.postgres_password = password("postgres")
        self.ldap_admin_password = password("ldap-admin")
        self.ldap_readonly_password = password("ldap-readonly")
        self.proxy_token = password("proxy-token", 48)
        self.cookie_secret = hex_key("cookie-secret")
        self.crypt_key = hex_key("crypt-key")
        # Users without a password in config get a generated initial one (exported as a secret).
        # One resource per user, named after the user: its value never changes while the user
        # stays declared (adding, removing or reordering others touches no other resource).
        self.generated_passwords = {u.name: password(f"user-{u.name}", 20, user)
                                    for u in args.service.users if u.password is None}
        self.user_passwords = {u.name: u.password or self.generated_passwords[u.name]
                               for u in args.service.users}
        self.register_outputs({})
