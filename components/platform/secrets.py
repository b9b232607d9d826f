"""Every generated secret of a deployment, created once and kept in the (encrypted) Pulumi state.

Keepers are never used: Postgres reads its password only at initdb and LDAP's admin password is
written at bootstrap, so a changed secret would lock the services out of their own data.
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

from components.config import ServiceSettings


class PlatformSecrets(pulumi.ComponentResource):
    postgres_password: pulumi.Output[str]
    ldap_admin_password: pulumi.Output[str]
    ldap_readonly_password: pulumi.Output[str]
    proxy_token: pulumi.Output[str]
    cookie_secret: pulumi.Output[str]
    crypt_key: pulumi.Output[str]
    user_passwords: dict[str, pulumi.Output[str]]
    generated_passwords: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: ServiceSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:PlatformSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def password(role: str, length: int = 32) -> pulumi.Output[str]:
            return random.RandomPassword(f"{name}-{role}", length=length, special=False,
                                         opts=child).result

        def hex_key(role: str) -> pulumi.Output[str]:
            return random.RandomBytes(f"{name}-{role}", length=32, opts=child).hex

        self.postgres_password = password("postgres")
        self.ldap_admin_password = password("ldap-admin")
        self.ldap_readonly_password = password("ldap-readonly")
        self.proxy_token = password("proxy-token", 48)
        self.cookie_secret = hex_key("cookie-secret")
        self.crypt_key = hex_key("crypt-key")
        # Users without a password in config get a generated initial one (exported as a secret).
        self.generated_passwords = {u.name: password(f"user-{u.name}", 20)
                                    for u in args.users if u.password is None}
        self.user_passwords = {u.name: u.password or self.generated_passwords[u.name]
                               for u in args.users}
        self.register_outputs({})
