#!/usr/bin/env python3
"""Sets the LDAP admin and read-only passwords from the mounted files, at every start.

Why: bootstrap.py writes them only when it creates the directory, so a regenerated secret (a new
stack on a kept data volume, a lost Pulumi state) would lock the reconcile and the hub out of
an existing directory. The entrypoint runs this after bootstrap.py and BEFORE slapd starts: it
changes the stopped server's databases with ``slapmodify`` (offline, like slapadd), so no
password has to be known to get in.

* cn=config, ``olcDatabase={1}mdb``: ``olcRootPW`` (the admin, cn=admin,<base>); cn=config
  itself has no root password (only root over ldapi may change it);
* the data tree: ``userPassword`` of ``cn=readonly,<base>``.

Both are hashed with {ARGON2} by slappasswd (bootstrap.hash_password); nothing is printed but
what was set. Environment: LDAP_BASE_DN, LDAP_ADMIN_PASSWORD_FILE, LDAP_READONLY_PASSWORD_FILE,
LDAP_CONFIG_DIR (/etc/ldap/slapd.d).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

try:  # imported as services.ldap.converge (tests)
    from . import bootstrap as _bootstrap
except ImportError:  # run as /opt/jhc/converge.py inside the image
    import bootstrap as _bootstrap  # type: ignore[no-redef]

ROOT_DB = "olcDatabase={1}mdb,cn=config"


def modify_ldif(dn: str, attribute: str, value: str) -> str:
    """One replace of one attribute (the value is a hash, never a password)."""
    return f"dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n-\n"


def _slapmodify(args: list[str], ldif: str) -> None:
    proc = subprocess.run(["slapmodify", *args], input=ldif, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        # slapmodify's messages name DNs and attributes, not values
        raise _bootstrap.BootstrapError(
            f"slapmodify {' '.join(args)} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-2000:]}")


def converge_passwords(*, base_dn: str, admin_password_file: str, readonly_password_file: str,
                       config_dir: Path) -> None:
    """Replace the admin's olcRootPW and the read-only account's userPassword (slapd stopped)."""
    _bootstrap.validate_base_dn(base_dn)
    if not _bootstrap.is_bootstrapped(config_dir):
        raise _bootstrap.BootstrapError(f"{config_dir} holds no complete configuration")
    admin_hash = _bootstrap.hash_password(_bootstrap.read_password_file(admin_password_file))
    readonly_hash = _bootstrap.hash_password(
        _bootstrap.read_password_file(readonly_password_file))
    _slapmodify(["-n", "0", "-F", str(config_dir)], modify_ldif(ROOT_DB, "olcRootPW", admin_hash))
    _slapmodify(["-n", "1", "-F", str(config_dir)],
                modify_ldif(f"cn=readonly,{base_dn}", "userPassword", readonly_hash))


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        missing = [k for k in ("LDAP_BASE_DN", "LDAP_ADMIN_PASSWORD_FILE",
                               "LDAP_READONLY_PASSWORD_FILE") if not env.get(k)]
        if missing:
            raise _bootstrap.BootstrapError(f"missing environment: {', '.join(missing)}")
        converge_passwords(base_dn=env["LDAP_BASE_DN"],
                           admin_password_file=env["LDAP_ADMIN_PASSWORD_FILE"],
                           readonly_password_file=env["LDAP_READONLY_PASSWORD_FILE"],
                           config_dir=Path(env.get("LDAP_CONFIG_DIR", "/etc/ldap/slapd.d")))
    except (_bootstrap.BootstrapError, ValueError) as exc:
        print(f"ldap converge: ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    print("ldap converge: admin and read-only passwords set from their files", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
