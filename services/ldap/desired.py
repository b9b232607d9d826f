"""The desired-state document for the LDAP reconcile tool, and its validation.

Why one module for both: the Pulumi program builds the document with :func:`desired_state`
and the reconcile tool (inside the LDAP image) parses it with :func:`parse_desired`; both
apply the same rules, so a bad user name fails at `pulumi preview` time, not half-way
through a deployment. Stdlib only: it runs in the Pulumi venv and in the slapd image.

Document shape (JSON, written to a mode-600 secret file)::

    {"base_dn": "dc=example,dc=org", "server": "ldap://ldap:389",
     "admin_password_file": "/run/secrets/ldap-admin-password",
     "users": [{"name": "alice", "uid": 123456, "gid": 100, "cn": "Alice Smith",
                "mail": "a@x.org", "password": "..."},
               {"name": "bob", "password": "..."}],
     "groups": [{"name": "physics", "gid": 234567, "members": ["alice"]}]}

A user without "uid" gets one from the directory (see :func:`assign_uids`): the uidNumber its
entry already has, else the first free number of its probe sequence. LDAP itself is the
memory of every assignment, so no uid ever moves when users are added, removed or reordered.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
BASE_DN_RE = re.compile(
    r"^dc=[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:,dc=[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
MAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})$")
SERVER_RE = re.compile(r"^ldaps?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?/?$")
DEFAULT_SERVER = "ldap://ldap:389"
DEFAULT_ADMIN_PASSWORD_FILE = "/run/secrets/ldap-admin-password"
DEFAULT_GID = 100  # "users", the primary group of every platform user (docker-stacks images)
MIN_ID = 1000  # below: system accounts/groups
MAX_ID = 2**31 - 2  # posix id_t range, minus the -1 sentinel
# Automatic uids: the same derivation as services/hub/jhc_ids.py (the hub image cannot import
# this module, nor this image that one; tests/test_uid_assignment.py checks they agree).
UID_BASE, ID_SPAN = 200_000, 1_000_000
MAX_PROBES = 64  # with 10,000 users in 1,000,000 ids, 3 probes fail with p ~ 1e-6


class DesiredStateError(ValueError):
    """A declared user/group or document field is invalid; the message names it."""


@dataclass(frozen=True)
class User:
    """A declared user: posixAccount + inetOrgPerson uid=<name>,ou=people,<base>."""

    name: str
    uid: int | None  # None: assigned by the directory (assign_uids)
    gid: int
    cn: str
    mail: str | None
    password: str

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return f"User(name={self.name!r}, uid={self.uid}, gid={self.gid})"


@dataclass(frozen=True)
class Group:
    """A declared group: posixGroup cn=<name>,ou=groups,<base> with memberUid values."""

    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Desired:
    """A validated desired-state document."""

    base_dn: str
    server: str
    admin_password_file: str
    users: tuple[User, ...]
    groups: tuple[Group, ...]


def validate_name(name: Any, what: str) -> str:
    """Return name if it matches ^[a-z][a-z0-9_-]{0,31}$ (POSIX-safe, LDAP-injection-proof)."""
    # fullmatch: with match, "$" also matches before a trailing newline ("ab\n" passed)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise DesiredStateError(
            f"{what} name {name!r} is invalid: must match {NAME_RE.pattern}"
        )
    return name


def _id(value: Any, what: str, minimum: int = MIN_ID) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_ID:
        raise DesiredStateError(
            f"{what} must be an integer in [{minimum}, {MAX_ID}], got {value!r}"
        )
    return value


def _text(value: Any, what: str, max_len: int = 256) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > max_len
        or any(not ch.isprintable() for ch in value)
    ):
        raise DesiredStateError(f"{what} must be 1-{max_len} printable characters")
    return value


def _password(value: Any, what: str) -> str:
    # Any Unicode is fine, but not control characters: ldap3 (reconcile, ldapauthenticator)
    # SASLprep-checks simple-bind passwords (RFC 4013) and refuses them.
    if not isinstance(value, str) or not value or len(value) > 1024 or any(
        unicodedata.category(ch) == "Cc" for ch in value
    ):
        raise DesiredStateError(f"{what} must be a non-empty string without control characters")
    return value


def parse_user(item: Mapping[str, Any]) -> User:
    """Validate one user mapping (keys: name, uid, gid=100, cn=name, mail=None, password)."""
    if not isinstance(item, Mapping):
        raise DesiredStateError(f"user entry must be a mapping, got {type(item).__name__}")
    name = validate_name(item.get("name"), "user")
    unknown = set(item) - {"name", "uid", "gid", "cn", "mail", "password"}
    if unknown:
        raise DesiredStateError(f"user {name}: unknown keys {sorted(unknown)}")
    mail = item.get("mail")
    if mail is not None and (not isinstance(mail, str) or not MAIL_RE.match(mail)):
        raise DesiredStateError(f"user {name}: mail {mail!r} is not a valid ASCII address")
    return User(
        name=name,
        uid=None if item.get("uid") is None else _id(item.get("uid"), f"user {name}: uid"),
        gid=_id(item.get("gid", DEFAULT_GID), f"user {name}: gid", minimum=1),
        cn=_text(item.get("cn", name), f"user {name}: cn"),
        mail=mail,
        password=_password(item.get("password"), f"user {name}: password"),
    )


def parse_group(item: Mapping[str, Any]) -> Group:
    """Validate one group mapping (keys: name, gid, members=[])."""
    if not isinstance(item, Mapping):
        raise DesiredStateError(f"group entry must be a mapping, got {type(item).__name__}")
    name = validate_name(item.get("name"), "group")
    unknown = set(item) - {"name", "gid", "members"}
    if unknown:
        raise DesiredStateError(f"group {name}: unknown keys {sorted(unknown)}")
    members = item.get("members", [])
    if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
        raise DesiredStateError(f"group {name}: members must be a list of user names")
    checked = tuple(sorted({validate_name(m, f"group {name}: member") for m in members}))
    return Group(name=name, gid=_id(item.get("gid"), f"group {name}: gid"), members=checked)


def _check_unique(values: Sequence[tuple[Any, str]], what: str) -> None:
    seen: dict[Any, str] = {}
    for value, owner in values:
        if value in seen:
            raise DesiredStateError(f"duplicate {what} {value!r}: {seen[value]} and {owner}")
        seen[value] = owner


def _validate_whole(users: Sequence[User], groups: Sequence[Group]) -> None:
    _check_unique([(u.name, f"user {u.name}") for u in users], "user name")
    _check_unique([(u.uid, f"user {u.name}") for u in users if u.uid is not None], "uid")
    _check_unique([(g.name, f"group {g.name}") for g in groups], "group name")
    _check_unique([(g.gid, f"group {g.name}") for g in groups], "group gid")
    declared = {u.name for u in users}
    for group in groups:
        unknown = [m for m in group.members if m not in declared]
        if unknown:
            raise DesiredStateError(f"group {group.name}: members not declared as users: {unknown}")


def desired_state(
    base_dn: str,
    users: Sequence[Mapping[str, Any]],
    groups: Sequence[Mapping[str, Any]],
    *,
    server: str = DEFAULT_SERVER,
    admin_password_file: str = DEFAULT_ADMIN_PASSWORD_FILE,
) -> dict[str, Any]:
    """Build (and validate) the JSON-ready document the reconcile tool reads.

    users: mappings with name, password, optional uid (none: assigned), gid (100), cn, mail.
    groups: mappings with name, gid, optional members (declared user names).
    server / admin_password_file: as seen from inside the one-shot reconcile container.
    Raises DesiredStateError (a ValueError) naming the offending user/group. Output order
    is sorted by name so the document (and anything hashing it) is stable.
    """
    doc = {
        "base_dn": base_dn,
        "server": server,
        "admin_password_file": admin_password_file,
        "users": [dict(u) for u in users],
        "groups": [dict(g) for g in groups],
    }
    parsed = parse_desired(doc)
    return {
        "base_dn": parsed.base_dn,
        "server": parsed.server,
        "admin_password_file": parsed.admin_password_file,
        "users": [
            {"name": u.name, **({"uid": u.uid} if u.uid is not None else {}), "gid": u.gid,
             "cn": u.cn,
             **({"mail": u.mail} if u.mail is not None else {}), "password": u.password}
            for u in sorted(parsed.users, key=lambda u: u.name)
        ],
        "groups": [
            {"name": g.name, "gid": g.gid, "members": list(g.members)}
            for g in sorted(parsed.groups, key=lambda g: g.name)
        ],
    }


def parse_desired(doc: Mapping[str, Any]) -> Desired:
    """Validate a whole document (as loaded from JSON) into a :class:`Desired`."""
    if not isinstance(doc, Mapping):
        raise DesiredStateError("desired state must be a JSON object")
    unknown = set(doc) - {"base_dn", "server", "admin_password_file", "users", "groups"}
    if unknown:
        raise DesiredStateError(f"unknown top-level keys {sorted(unknown)}")
    base_dn = doc.get("base_dn")
    if not isinstance(base_dn, str) or not BASE_DN_RE.match(base_dn):
        raise DesiredStateError(f"base_dn {base_dn!r} must be lowercase dc= components")
    server = doc.get("server", DEFAULT_SERVER)
    if not isinstance(server, str) or not SERVER_RE.match(server):
        raise DesiredStateError(f"server {server!r} must look like ldap://host:port")
    pw_file = doc.get("admin_password_file", DEFAULT_ADMIN_PASSWORD_FILE)
    if not isinstance(pw_file, str) or not pw_file.startswith("/"):
        raise DesiredStateError("admin_password_file must be an absolute path")
    raw_users, raw_groups = doc.get("users", []), doc.get("groups", [])
    if not isinstance(raw_users, list) or not isinstance(raw_groups, list):
        raise DesiredStateError("users and groups must be lists")
    users = tuple(parse_user(u) for u in raw_users)
    groups = tuple(parse_group(g) for g in raw_groups)
    _validate_whole(users, groups)
    return Desired(base_dn=base_dn, server=server, admin_password_file=pw_file,
                   users=users, groups=groups)


def probe_uid(name: str, attempt: int) -> int:
    """The attempt-th candidate uid of a name. Attempt 0 is the name-derived id every earlier
    version gave (frozen: homes on disk are owned by it); later ones hash "<name>\\n<attempt>"
    (no name holds a newline, so the hashed inputs of two names or attempts never coincide)."""
    key = name if attempt == 0 else f"{name}\n{attempt}"
    return UID_BASE + int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % ID_SPAN


def assign_uids(users: Sequence[tuple[str, int | None]], remembered: Mapping[str, int],
                taken: Iterable[int]) -> dict[str, int]:
    """The uid of every declared user, given what the directory already holds.

    users: (name, explicit uid or None) as declared. remembered: the uidNumber of every
    existing entry by name (disabled ones included). taken: every uidNumber in use.
    An explicit uid wins; otherwise an existing entry keeps its number; a new user gets the
    first candidate of its probe sequence that nobody holds or declares. New users are
    served in name order, so the result does not depend on the order of declaration.
    Raises DesiredStateError when a name exhausts its probes (practically never).
    """
    result: dict[str, int] = {}
    used = set(taken) | set(remembered.values()) | {uid for _, uid in users if uid is not None}
    new = []
    for name, explicit in users:
        if explicit is not None:
            result[name] = explicit
        elif name in remembered:
            result[name] = remembered[name]
        else:
            new.append(name)
    for name in sorted(new):
        for attempt in range(MAX_PROBES):
            candidate = probe_uid(name, attempt)
            if candidate not in used:
                break
        else:
            raise DesiredStateError(f"user {name}: no free uid in {MAX_PROBES} probes; "
                                    "give it an explicit uid")
        result[name] = candidate
        used.add(candidate)
    return result
