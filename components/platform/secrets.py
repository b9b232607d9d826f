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

import hashlib
import hmac
import string
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.config import ServiceSettings

ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 20


@dataclass(frozen=True)
class SecretsArgs:
    service: ServiceSettings
    keep: bool  # not allowDataLoss: one policy for the data and the secrets it depends on


def initial_password(key_hex: str, login: str, generation: int = 0) -> str:
    """A user's generated password: HMAC-SHA256 of the login under the stack's key, as 20 letters
    and digits (119 bits; the alphabet of RandomPassword without specials).

    Derived rather than one RandomPassword per user: 500 users were 500 resources, most of a
    preview's time (bench/program_under_mocks.py). The value depends on nothing but the key, the
    login and its generation, so adding, removing or reordering users changes no one's password.
    """
    digest = hmac.new(bytes.fromhex(key_hex),
                      f"jupyterhub-cloud initial password\0{login}\0{generation}".encode(),
                      hashlib.sha256).digest()
    number = int.from_bytes(digest, "big")  # 2**256 >> 62**20: the remainder's bias is < 1e-40
    chars = []
    for _ in range(PASSWORD_LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(chars)


class PlatformSecrets(pulumi.ComponentResource):
    postgres_password: pulumi.Output[str]
    ldap_admin_password: pulumi.Output[str]
    ldap_readonly_password: pulumi.Output[str]
    proxy_token: pulumi.Output[str]
    cookie_secret: pulumi.Output[str]
    crypt_key: pulumi.Output[str]
    generated_passwords: pulumi.Output[dict[str, str]]  # users without a password in config
    user_passwords: pulumi.Output[dict[str, str]]  # every user: from config or generated

    def __init__(self, name: str, args: SecretsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:PlatformSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, protect=args.keep, retain_on_delete=args.keep)

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
        # Users without a password in config get one derived from this key (exported as a
        # secret). Kept like the other secrets: a new key is a new password for each of them.
        users = args.service.users
        generated = [u for u in users if u.password is None]
        self.generated_passwords = pulumi.Output.secret(hex_key("user-password-key").apply(
            lambda key: {u.name: initial_password(key, u.name, u.password_generation)
                         for u in generated}))
        configured = [u for u in users if u.password is not None]
        self.user_passwords = pulumi.Output.secret(pulumi.Output.all(
            self.generated_passwords, *(u.password for u in configured)).apply(
            lambda values: {**values[0], **dict(zip((u.name for u in configured), values[1:],
                                                    strict=True))}))
        self.register_outputs({})
