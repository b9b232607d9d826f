"""Users, groups and their numeric ids.

A uidNumber decides who owns a home directory on the data volume, so it must never change for an
existing user. A user's uid is explicit in config or assigned where it is remembered: by the LDAP
reconcile (services/ldap/desired.assign_uids: an existing entry keeps its number, a new user gets
the first free candidate of its name's probe sequence, whose first is the name-derived id of
services/hub/jhc_ids.py) or, for GitHub logins, by the hub's uid registry. Group gids are still
derived from the name, and a collision between groups is a config error.
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
    uid: int | None  # explicit in config; None: assigned by LDAP's reconcile or the hub's registry
    full_name: str
    email: str | None
    groups: tuple[str, ...]
    admin: bool
    password: pulumi.Output[str] | None  # secret; None: generated at deploy
    password_generation: int = 0  # raised to reset a generated password


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
