"""Numeric ids derived from names: one definition for the Pulumi program and the hub.

The Pulumi program writes these uidNumbers into LDAP; the hub derives the same number for a
GitHub login, which has no LDAP entry. A uid decides who owns a home directory on the data
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
