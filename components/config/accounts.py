"""Users, groups and their numeric ids.

A uidNumber decides who owns a home directory on the data volume, so it must never change for an
existing user. Ids are derived from the name alone (services/hub/jhc_ids.py, shared with the hub),
so adding, removing or reordering other users cannot move anyone's id; a collision is a config
error that asks for an explicit id instead of silently renumbering somebody.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pulumi

from services.hub.jhc_ids import GID_BASE, ID_SPAN, UID_BASE, USERS_GID, derived_id
from services.hub.jhc_values import ACCOUNT_RE

__all__ = ["GID_BASE", "ID_SPAN", "UID_BASE", "USERS_GID", "derived_id"]

# An LDAP account (user) name, and also the pattern of group, image and dataset names. The one
# definition of what an account and a login name are: services/hub/jhc_values.py.
NAME = ACCOUNT_RE
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
