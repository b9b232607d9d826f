#!/usr/bin/env python3
"""First-start bootstrap of the jupyterhub-cloud LDAP server (Debian's slapd).

Why this exists: the image must come up with a complete, hardened directory on an empty data
volume, and must never touch an existing directory (its config and database are bind-mounted
from the data volume and survive image rebuilds). So the entrypoint calls this once per start:

* if ``<config_dir>/cn=config.ldif`` exists (and no "incomplete" marker): do nothing;
* otherwise render ``ldif/config.ldif.tmpl`` and ``ldif/data.ldif.tmpl`` with
  :func:`render_bootstrap` (pure, tested) and load them with ``slapadd``.

Passwords come from files (never env values or arguments, which leak through /proc and
``docker inspect``), are hashed by Debian's ``slappasswd`` with the {ARGON2} scheme, and only
the hashes are rendered. Nothing here prints a password or a hash.

Environment (CLI): LDAP_BASE_DN, LDAP_ORGANISATION, LDAP_ADMIN_PASSWORD_FILE,
LDAP_READONLY_PASSWORD_FILE; LDAP_CONFIG_DIR (/etc/ldap/slapd.d), LDAP_DATA_DIR
(/var/lib/ldap), LDAP_RUN_DIR (/run/slapd) exist so tests can bootstrap into temp dirs.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

try:  # imported as services.ldap.bootstrap (tests)
    from . import desired as _desired
except ImportError:  # run as /opt/jhc/bootstrap.py inside the image
    import desired as _desired  # type: ignore[no-redef]

TEMPLATE_DIR = Path(__file__).resolve().parent / "ldif"
MODULE_DIR = "/usr/lib/ldap"
SCHEMA_DIR = "/etc/ldap/schema"
# Argon2 cost: 19 MiB, 2 passes, 1 lane (OWASP's minimum for Argon2; RFC 9106 ballpark).
# Used both for the module load line in cn=config and for slappasswd, so every hash matches.
ARGON2_PARAMS = "m=19456 t=2 p=1"
HASH_SCHEME = "{ARGON2}"
INCOMPLETE_MARKER = ".jhc-bootstrap-incomplete"

# Only dc= components: the base DN is rendered into DNs and LDIF, so keep it trivially safe.
BASE_DN_RE = _desired.BASE_DN_RE


class BootstrapError(RuntimeError):
    """Raised for a configuration or state that bootstrap refuses to act on."""


@dataclass(frozen=True)
class BootstrapLdif:
    """The two rendered LDIF documents: cn=config (slapadd -n 0) and the tree (-n 1)."""

    config: str
    data: str


def validate_base_dn(base_dn: str) -> str:
    """Return base_dn if it is a plain lowercase dc=...,dc=... DN, else raise ValueError."""
    if not isinstance(base_dn, str) or not BASE_DN_RE.match(base_dn):
        raise ValueError(
            f"LDAP base DN {base_dn!r} is invalid: expected lowercase dc= components only, "
            "e.g. 'dc=example,dc=org'"
        )
    return base_dn


def validate_organisation(organisation: str) -> str:
    """Return organisation if it is non-empty printable text of sane length."""
    if (
        not isinstance(organisation, str)
        or not organisation.strip()
        or len(organisation) > 256
        or any(not ch.isprintable() for ch in organisation)
    ):
        raise ValueError("LDAP organisation must be 1-256 printable characters")
    return organisation


def render_template(name: str, values: Mapping[str, str]) -> str:
    """Render ldif/<name> with ${placeholders}; a missing value is an error (KeyError)."""
    text = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
    return string.Template(text).substitute(values)


def render_bootstrap(
    *,
    base_dn: str,
    organisation: str,
    admin_password_hash: str,
    readonly_password_hash: str,
    data_dir: str,
    run_dir: str,
    module_dir: str = MODULE_DIR,
    schema_dir: str = SCHEMA_DIR,
) -> BootstrapLdif:
    """Render the bootstrap LDIF (pure). Hashes must already be {ARGON2} (or another scheme)."""
    validate_base_dn(base_dn)
    validate_organisation(organisation)
    for label, value in (("admin", admin_password_hash), ("readonly", readonly_password_hash)):
        if not re.fullmatch(r"\{[A-Z0-9.-]+\}\S+", value):
            raise ValueError(f"{label} password hash must be a '{{SCHEME}}value' string")
    for label, value in (("data_dir", data_dir), ("run_dir", run_dir),
                         ("module_dir", module_dir), ("schema_dir", schema_dir)):
        if not value.startswith("/") or any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError(f"{label} must be an absolute path without spaces: {value!r}")
    values = {
        "base_dn": base_dn,
        "first_dc": base_dn.split(",", 1)[0][len("dc="):],
        "organisation_b64": base64.b64encode(organisation.encode("utf-8")).decode("ascii"),
        "admin_password_hash": admin_password_hash,
        "readonly_password_hash": readonly_password_hash,
        "data_dir": data_dir.rstrip("/") or "/",
        "run_dir": run_dir.rstrip("/") or "/",
        "module_dir": module_dir,
        "schema_dir": schema_dir,
        "argon2_params": ARGON2_PARAMS,
    }
    return BootstrapLdif(
        config=render_template("config.ldif.tmpl", values),
        data=render_template("data.ldif.tmpl", values),
    )


def read_password_file(path: str) -> str:
    """Read a password file; trailing CR/LF is dropped (files written by editors/echo)."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BootstrapError(f"cannot read password file {path}: {exc.strerror}") from None
    password = raw.rstrip("\r\n")
    if not password or "\x00" in password:
        raise BootstrapError(f"password file {path} is empty or contains NUL")
    return password


def hash_password(password: str, module_dir: str = MODULE_DIR) -> str:
    """Hash with slapd's own {ARGON2} module via slappasswd, the secret passed in a 0600 file.

    Why slappasswd: the hash is produced by exactly the code slapd verifies with; why -T: a
    secret on the command line (-s) would be visible in /proc to every process.
    """
    with tempfile.TemporaryDirectory(prefix="jhc-pw-") as tmp:
        secret = Path(tmp) / "secret"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password)
        proc = subprocess.run(
            ["slappasswd", "-o", f"module-path={module_dir}",
             "-o", f"module-load=argon2 {ARGON2_PARAMS}", "-h", HASH_SCHEME, "-T", str(secret)],
            capture_output=True, text=True, check=False,
        )
    hashed = proc.stdout.strip()
    if proc.returncode != 0 or not hashed.startswith(HASH_SCHEME):
        raise BootstrapError(f"slappasswd failed (exit {proc.returncode})")
    return hashed


def _visible_entries(path: Path) -> list[Path]:
    """Entries of a directory, ignoring lost+found (a fresh ext4 volume root has it)."""
    if not path.exists():
        return []
    return [p for p in path.iterdir() if p.name != "lost+found"]


def _clear(path: Path) -> None:
    """Remove the contents (not the directory itself: it may be a bind mount)."""
    for entry in _visible_entries(path):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _slapadd(args: list[str], ldif: str) -> None:
    """Run slapadd reading LDIF from stdin; its output never contains secrets but is kept short."""
    proc = subprocess.run(["slapadd", "-q", *args], input=ldif, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise BootstrapError(f"slapadd {' '.join(args)} failed (exit {proc.returncode}): "
                             f"{proc.stderr.strip()[-2000:]}")


def is_bootstrapped(config_dir: Path) -> bool:
    """True when a complete cn=config exists (the database is then left alone)."""
    complete = (config_dir / "cn=config.ldif").exists()
    return complete and not (config_dir / INCOMPLETE_MARKER).exists()


def bootstrap(
    *,
    base_dn: str,
    organisation: str,
    admin_password_file: str,
    readonly_password_file: str,
    config_dir: Path,
    data_dir: Path,
    run_dir: Path,
) -> bool:
    """Create cn=config and the initial tree unless they exist. Returns True if it created them.

    Crash safety: a marker file is written before the first slapadd and removed after the
    last; a marker found at start means a previous attempt died half-way, and only then are
    the (our own, partial) contents cleared. Unknown non-empty directories are never touched.
    """
    if is_bootstrapped(config_dir):
        return False
    marker = config_dir / INCOMPLETE_MARKER
    if marker.exists():
        _clear(config_dir)
        _clear(data_dir)
    elif _visible_entries(config_dir) or _visible_entries(data_dir):
        raise BootstrapError(
            f"{config_dir} or {data_dir} is not empty but holds no complete configuration; "
            "refusing to overwrite it (inspect and empty it by hand)"
        )
    admin_hash = hash_password(read_password_file(admin_password_file))
    readonly_hash = hash_password(read_password_file(readonly_password_file))
    ldif = render_bootstrap(
        base_dn=base_dn, organisation=organisation, admin_password_hash=admin_hash,
        readonly_password_hash=readonly_hash, data_dir=str(data_dir), run_dir=str(run_dir),
    )
    for directory in (config_dir, data_dir, run_dir):
        directory.mkdir(parents=True, exist_ok=True)
    marker.touch(mode=0o600)
    _slapadd(["-n", "0", "-F", str(config_dir)], ldif.config)
    _slapadd(["-n", "1", "-F", str(config_dir)], ldif.data)
    marker.unlink()
    return True


def main(env: Mapping[str, str] | None = None) -> int:
    """CLI used by entrypoint.sh: bootstrap from the environment; exit 0 if ready."""
    env = os.environ if env is None else env
    try:
        missing = [k for k in ("LDAP_BASE_DN", "LDAP_ORGANISATION", "LDAP_ADMIN_PASSWORD_FILE",
                               "LDAP_READONLY_PASSWORD_FILE") if not env.get(k)]
        config_dir = Path(env.get("LDAP_CONFIG_DIR", "/etc/ldap/slapd.d"))
        if is_bootstrapped(config_dir):
            print("ldap bootstrap: database already initialised, nothing to do", flush=True)
            return 0
        if missing:
            raise BootstrapError(f"missing environment: {', '.join(missing)}")
        bootstrap(
            base_dn=validate_base_dn(env["LDAP_BASE_DN"]),
            organisation=validate_organisation(env["LDAP_ORGANISATION"]),
            admin_password_file=env["LDAP_ADMIN_PASSWORD_FILE"],
            readonly_password_file=env["LDAP_READONLY_PASSWORD_FILE"],
            config_dir=config_dir,
            data_dir=Path(env.get("LDAP_DATA_DIR", "/var/lib/ldap")),
            run_dir=Path(env.get("LDAP_RUN_DIR", "/run/slapd")),
        )
    except (BootstrapError, ValueError) as exc:
        print(f"ldap bootstrap: ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"ldap bootstrap: created {env['LDAP_BASE_DN']} with ou=people, ou=groups, "
          "cn=readonly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
