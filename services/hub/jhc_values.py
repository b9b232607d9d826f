"""What a login name, a memory size and a CPU amount are: one definition for program and hub.

Why one module: the stack loader (components/config/__init__.py) and the hub (jhc_settings.py) used to
carry their own patterns, and they disagreed (a 38-character or all-digit login, ``1.5G``
passed the loader and stopped the hub at start). Both now call the functions below, so the
loader refuses at ``pulumi preview`` exactly what the hub would refuse. Stdlib only: it runs in
the Pulumi venv and in the hub image (the Dockerfile copies it).

Each function raises ``ValueError`` with a message that says what is wrong; callers add the
name of their setting (the config key in the loader, the JHC_* variable in the hub).
"""

from __future__ import annotations

import re

#: A normalised login name: lower case, POSIX-portable, at most 32 characters (useradd's
#: limit, used by the docker-stacks start script), not all digits (useradd would read it as a
#: uid). It cannot contain "/" and cannot start with ".", so it is always a single, harmless
#: path component: the per-user home directory is named after it (a frozen contract).
LOGIN_PATTERN = r"^(?!\d+$)[a-z0-9_][a-z0-9_.-]{0,31}$"
LOGIN_RE = re.compile(LOGIN_PATTERN)
#: Logins that must never become a container user or a home directory.
RESERVED_LOGINS = frozenset({"root", "jovyan", "nobody"})

#: An account this project writes into LDAP: a login name that also starts with a letter and
#: has no "." (it is a posixAccount uid and a posixGroup memberUid). Every account name is a
#: login name (a test feeds both patterns the same edge values).
ACCOUNT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
ACCOUNT_RE = re.compile(ACCOUNT_PATTERN)

#: A memory size: a decimal number and a K, M, G or T suffix (powers of 1024, as JupyterHub's
#: ByteSpecification reads them); "0" means no limit. The suffix is required: DockerSpawner's
#: mem_limit refuses a string of bare bytes (found by tests/test_hub_contract.py).
MEMORY_RE = re.compile(r"^(?:(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[KMGT])|0)$")
MEMORY_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
#: Docker refuses a container memory limit below 6 MiB ("Minimum memory limit allowed is 6MB").
MIN_MEMORY = 6 * 1024**2

#: A CPU amount: a decimal number of cores with at most two decimals; "0" means no limit.
#: Docker's NanoCPUs resolution makes 0.01 the smallest useful amount.
CPU_RE = re.compile(r"^[0-9]+(?:\.[0-9]{1,2})?$")
MIN_CPU, MAX_CPU = 0.01, 1024.0


def normalize_login(name: str) -> str:
    """A login as typed (any case, surrounding whitespace) -> the normalised, validated name."""
    if not isinstance(name, str):
        raise ValueError(f"invalid username {name!r}: not a string")
    return validate_login(name.strip().lower())


def validate_login(name: object) -> str:
    """Return ``name`` if it is a valid normalised login name, else raise ValueError."""
    if not isinstance(name, str) or not LOGIN_RE.fullmatch(name):
        raise ValueError(f"invalid username {name!r}: must match {LOGIN_PATTERN}")
    if name in RESERVED_LOGINS:
        raise ValueError(f"invalid username {name!r}: reserved")
    return name


def validate_account(name: object) -> str:
    """Return ``name`` if it may be an LDAP account of this project (see ACCOUNT_PATTERN)."""
    if not isinstance(name, str) or not ACCOUNT_RE.fullmatch(name):
        raise ValueError(f"invalid account name {name!r}: must match {ACCOUNT_PATTERN}")
    return validate_login(name)


def memory_bytes(text: str) -> int:
    """``"2G"`` -> 2147483648; ``"0"`` -> 0 (no limit). Raises ValueError when malformed."""
    match = MEMORY_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a size like 512M, 1.5G or 2G")
    if match["number"] is None:
        return 0
    size = int(float(match["number"]) * MEMORY_UNITS[match["unit"]])
    if size and size < MIN_MEMORY:
        raise ValueError(f"{text!r} is below Docker's minimum of 6M")
    if not size and float(match["number"]):
        raise ValueError(f"{text!r} rounds to 0 bytes")
    return size


def cpu_amount(text: str) -> float:
    """``"1.5"`` -> 1.5; ``"0"`` -> 0.0 (no limit). Raises ValueError when malformed."""
    if not isinstance(text, str) or not CPU_RE.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a number of CPUs like 0.5, 1 or 2.25")
    value = float(text)
    if value and not MIN_CPU <= value <= MAX_CPU:
        raise ValueError(f"{text!r} is outside {MIN_CPU:g}..{MAX_CPU:g} CPUs")
    return value
