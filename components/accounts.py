"""Users, groups and their numeric ids.

A uidNumber decides who owns a home directory on the data volume, so it must never change for an
existing user. Ids are derived from the name alone (a hash into a fixed range), so adding, removing
or reordering other users cannot move anyone's id; a collision is a config error that asks for an
explicit id instead of silently renumbering somebody.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pulumi

USERS_GID = 100  # "users" in the Jupyter docker-stacks images: every account's primary group
UID_BASE, GID_BASE, ID_SPAN = 200_000, 1_200_000, 1_000_000
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Names that would clash with system accounts or groups inside the notebook images.
RESERVED = frozenset({"root", "jovyan", "users", "admin", "nobody", "daemon", "bin", "sys", "sudo",
                      "docker", "staff", "adm", "wheel"})


@dataclass(frozen=True)
class Group:
    name: str
    gid: int


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    full_name: str
    email: str | None
    groups: tuple[str, ...]
    admin: bool
    password: pulumi.Output[str] | None  # secret; None: generated at deploy


def derived_id(name: str, base: int) -> int:
    """Frozen forever: changing this function would move every user's files."""
    digest = hashlib.sha256(name.encode()).digest()
    return base + int.from_bytes(digest[:8], "big") % ID_SPAN


def assign_ids(names_and_explicit: Iterable[tuple[str, int | None]], base: int
               ) -> tuple[dict[str, int], tuple[str, str] | None]:
    """Ids for each name, and the first pair of names sharing one (None if all differ)."""
    ids: dict[str, int] = {}
    owner: dict[int, str] = {}
    for name, explicit in names_and_explicit:
        number = explicit if explicit is not None else derived_id(name, base)
        if number in owner:
            return ids, (owner[number], name)
        ids[name] = number
        owner[number] = name
    return ids, None
