"""Numeric ids derived from names: one definition for the Pulumi program and the hub.

A uid's first choice is derived from the name; on a collision the next candidates of the
name's probe sequence are tried. The assignment is remembered where it lives: in LDAP (the
reconcile keeps existing entries' uidNumbers) and, for GitHub logins, in the hub's database
(jhc_uid_registry.py). A uid decides who owns a home directory on the data
volume, so this function is frozen: changing it would hand every user's files to someone else.
Stdlib only: it runs in the Pulumi venv and in the hub image.
"""

from __future__ import annotations

import hashlib

USERS_GID = 100  # "users" in the Jupyter docker-stacks images: every account's primary group
UID_BASE, GID_BASE, ID_SPAN = 200_000, 1_200_000, 1_000_000


def derived_id(name: str, base: int) -> int:
    digest = hashlib.sha256(name.encode()).digest()
    return base + int.from_bytes(digest[:8], "big") % ID_SPAN


def probe_uid(name: str, attempt: int) -> int:
    """The attempt-th candidate uid of a name: attempt 0 is derived_id (every earlier version's
    uid), later ones hash "<name>\\n<attempt>". Identical to services/ldap/desired.probe_uid
    (that image cannot import this file; a test checks they agree)."""
    key = name if attempt == 0 else f"{name}\n{attempt}"
    return UID_BASE + int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % ID_SPAN
