#!/usr/bin/env python3
"""Make LDAP match the users and groups declared in stack config (run on every `pulumi up`).

Usage (in a one-shot container of the LDAP image, on the internal network)::

    python3 /opt/jhc/reconcile.py --desired /run/secrets/ldap-desired.json [--dry-run]
        [--json] [--wait SECONDS]

Exit status: 0 done (or nothing to do); 1 conflicts found, nothing changed (e.g. a uidNumber
differs from the declared uid, or a same-named entry not managed by us); 2 invalid input
(document, file mode, password file); 3 LDAP error (unreachable, bad admin password, failed
operation).

Why it works the way it does:

* Plan first, then write: every conflict is found before the first modification, so a bad
  config never leaves LDAP half-reconciled.
* Only entries carrying ``description: jhc:managed`` are touched; an existing entry without
  the mark makes the run fail instead of being taken over.
* uidNumber/gidNumber are never changed: files on the data volume are owned by those
  numbers, so a renumbering would orphan homes. A difference is a conflict naming the entry.
* A user declared without a uid keeps its entry's uidNumber; a new one gets the first free
  number of its probe sequence (desired.assign_uids). LDAP is the memory of assignments.
* Users no longer declared are disabled, not deleted (userPassword removed, so no bind can
  succeed and no hash is left to crack; removed from all managed groups; marked
  ``jhc:disabled``), keeping their uidNumber reserved. Re-declaring re-enables them.
* Passwords: the declared password is checked with a real bind as the user; only when the
  bind fails is it replaced, through the LDAP Password Modify extended operation (RFC 3062)
  so that slapd itself hashes it with its configured ``olcPasswordHash`` ({ARGON2}). One hash
  implementation (the server's) for every password; nothing weak can be written by mistake.
* Filters never contain user input (only static objectClass filters); DNs are built from
  names validated against ^[a-z][a-z0-9_-]{0,31}$ and still RDN-escaped.
* No password (nor hash) is ever printed.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPSASLPrepError, LDAPSocketOpenError
from ldap3.protocol.sasl.sasl import sasl_prep
from ldap3.utils.dn import escape_rdn, parse_dn

try:  # imported as services.ldap.reconcile (tests, Pulumi program)
    from . import desired as _desired
except ImportError:  # run as /opt/jhc/reconcile.py inside the image
    import desired as _desired  # type: ignore[no-redef]

Desired = _desired.Desired
Group = _desired.Group
User = _desired.User

MANAGED = "jhc:managed"
DISABLED = "jhc:disabled"
LOGIN_SHELL = "/bin/bash"
USER_CLASSES = ["top", "inetOrgPerson", "posixAccount"]
GROUP_CLASSES = ["top", "posixGroup"]
INVALID_CREDENTIALS = 49
ATTRS = ["objectClass", "uid", "cn", "sn", "mail", "uidNumber", "gidNumber", "homeDirectory",
         "loginShell", "description", "memberUid", "userPassword"]


class ReconcileError(RuntimeError):
    """An LDAP-side failure (exit 3)."""


class InputError(RuntimeError):
    """Invalid desired-state input or secret files (exit 2)."""


@dataclass
class Entry:
    """The parts of an existing LDAP entry reconcile looks at (values as strings)."""

    dn: str
    attrs: dict[str, list[str]]

    def get(self, name: str) -> list[str]:
        """All values of an attribute (case-insensitive name), [] if absent."""
        return self.attrs.get(name.lower(), [])

    def first(self, name: str) -> str | None:
        """The first value of an attribute or None."""
        values = self.get(name)
        return values[0] if values else None

    def has_mark(self, mark: str) -> bool:
        """True if description holds the mark (description matching is case-insensitive)."""
        return any(v.lower() == mark for v in self.get("description"))

    @property
    def managed(self) -> bool:
        """Created by (and so owned by) this tool."""
        return self.has_mark(MANAGED)

    @property
    def disabled(self) -> bool:
        """Disabled by this tool because no longer declared."""
        return self.has_mark(DISABLED)


@dataclass
class Step:
    """One planned change (or confirmation) for one user or group."""

    kind: str  # "user" | "group"
    name: str
    dn: str
    outcome: str  # created | updated | disabled | unchanged
    add: dict[str, list[str]] | None = None
    changes: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    password: str | None = field(default=None, repr=False)
    details: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """A log line naming what changes (attribute names, member names; never secrets)."""
        extra = f" ({', '.join(self.details)})" if self.details else ""
        return f"{self.kind} {self.name}: {self.outcome}{extra}"


@dataclass
class Plan:
    """Everything a run would do, plus the conflicts that forbid doing it."""

    steps: list[Step] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """created/updated/disabled/unchanged per kind."""
        out = {k: {"created": 0, "updated": 0, "disabled": 0, "unchanged": 0}
               for k in ("users", "groups")}
        for step in self.steps:
            out[step.kind + "s"][step.outcome] += 1
        return out


def people_dn(base_dn: str) -> str:
    """ou=people under the base (created by the bootstrap)."""
    return f"ou=people,{base_dn}"


def groups_dn(base_dn: str) -> str:
    """ou=groups under the base (created by the bootstrap)."""
    return f"ou=groups,{base_dn}"


def user_dn(name: str, base_dn: str) -> str:
    """DN of a user; the name is validated and still RDN-escaped (defence in depth)."""
    return f"uid={escape_rdn(_desired.validate_name(name, 'user'))},{people_dn(base_dn)}"


def group_dn(name: str, base_dn: str) -> str:
    """DN of a group; validated and RDN-escaped like user_dn."""
    return f"cn={escape_rdn(_desired.validate_name(name, 'group'))},{groups_dn(base_dn)}"


def surname(cn: str, fallback: str) -> str:
    """inetOrgPerson requires sn: the last word of the common name."""
    words = cn.split()
    return words[-1] if words else fallback


def user_attributes(user: User) -> dict[str, list[str]]:
    """The managed attributes of a user entry, as LDAP string values."""
    return {
        "uid": [user.name],
        "cn": [user.cn],
        "sn": [surname(user.cn, user.name)],
        "mail": [user.mail] if user.mail else [],
        "uidNumber": [str(user.uid)],
        "gidNumber": [str(user.gid)],
        "homeDirectory": [f"/home/{user.name}"],
        "loginShell": [LOGIN_SHELL],
    }


def _rdn_key(dn: str) -> str:
    attr, value, _sep = parse_dn(dn)[0]
    return f"{attr.lower()}={value}"


def _index(entries: Iterable[Entry]) -> dict[str, Entry]:
    return {_rdn_key(e.dn): e for e in entries}


def _id_owners(entries: Iterable[Entry], cls: str, attr: str) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for entry in entries:
        if cls.lower() in (c.lower() for c in entry.get("objectClass")):
            for value in entry.get(attr):
                owners.setdefault(value, []).append(entry.dn.lower())
    return owners


def plan_users(desired: Desired, people: dict[str, Entry], all_entries: list[Entry],
               password_ok: Callable[[str, str], bool]) -> Plan:
    """Plan user changes. password_ok(dn, password) -> bool checks a declared password."""
    plan = Plan()
    uid_owners = _id_owners(all_entries, "posixAccount", "uidNumber")
    declared = {u.name for u in desired.users}
    for user in sorted(desired.users, key=lambda u: u.name):
        dn = user_dn(user.name, desired.base_dn)
        existing = people.get(f"uid={user.name}")
        others = [d for d in uid_owners.get(str(user.uid), []) if d != dn.lower()]
        if others:
            plan.errors.append(f"user {user.name}: uid {user.uid} is already used by {others[0]}")
            continue
        want = user_attributes(user)
        if existing is None:
            add = {k: v for k, v in want.items() if v}
            add["objectClass"] = USER_CLASSES
            add["description"] = [MANAGED]
            plan.steps.append(Step("user", user.name, dn, "created", add=add,
                                   password=user.password, details=["password"]))
            continue
        if not existing.managed:
            plan.errors.append(f"user {user.name}: {existing.dn} exists but is not managed by "
                               f"jupyterhub-cloud (no description {MANAGED}); refusing to touch it")
            continue
        if existing.first("uidNumber") != str(user.uid):
            plan.errors.append(
                f"user {user.name}: uidNumber in LDAP is {existing.first('uidNumber')} but the "
                f"config declares {user.uid}; refusing to renumber (home directories and files "
                "are owned by the old number). Restore the old uid in the config."
            )
            continue
        step = Step("user", user.name, dn, "unchanged")
        for attr in ("cn", "sn", "mail", "gidNumber", "homeDirectory", "loginShell"):
            if existing.get(attr) != want[attr]:
                step.changes[attr] = [(ldap3.MODIFY_REPLACE, want[attr])]
                step.details.append(attr)
        if existing.disabled:
            step.changes["description"] = [(ldap3.MODIFY_DELETE, [DISABLED])]
            step.details.append("re-enabled")
            step.password = user.password
        elif not existing.get("userPassword") or not password_ok(dn, user.password):
            step.password = user.password
        if step.password is not None:
            step.details.append("password")
        if step.changes or step.password is not None:
            step.outcome = "updated"
        plan.steps.append(step)
    for key, entry in sorted(people.items()):
        name = entry.first("uid")
        if not entry.managed or name is None or key != f"uid={name}" or name in declared:
            continue
        step = Step("user", name, entry.dn, "unchanged")
        if not entry.disabled:
            step.changes["description"] = [(ldap3.MODIFY_ADD, [DISABLED])]
        if entry.get("userPassword"):
            step.changes["userPassword"] = [(ldap3.MODIFY_DELETE, [])]
        if step.changes:
            step.outcome = "disabled"
        plan.steps.append(step)
    return plan


def plan_groups(desired: Desired, groups: dict[str, Entry], all_entries: list[Entry]) -> Plan:
    """Plan group changes: exact memberUid sets for declared groups, empty for undeclared."""
    plan = Plan()
    gid_owners = _id_owners(all_entries, "posixGroup", "gidNumber")
    declared = {g.name for g in desired.groups}
    for group in sorted(desired.groups, key=lambda g: g.name):
        dn = group_dn(group.name, desired.base_dn)
        existing = groups.get(f"cn={group.name}")
        others = [d for d in gid_owners.get(str(group.gid), []) if d != dn.lower()]
        if others:
            plan.errors.append(f"group {group.name}: gid {group.gid} is already used by "
                               f"{others[0]}")
            continue
        if existing is None:
            add = {"objectClass": GROUP_CLASSES, "cn": [group.name],
                   "gidNumber": [str(group.gid)], "description": [MANAGED]}
            if group.members:
                add["memberUid"] = list(group.members)
            plan.steps.append(Step("group", group.name, dn, "created", add=add,
                                   details=[f"+{m}" for m in group.members]))
            continue
        if not existing.managed:
            plan.errors.append(f"group {group.name}: {existing.dn} exists but is not managed by "
                               f"jupyterhub-cloud (no description {MANAGED}); refusing to touch it")
            continue
        if existing.first("gidNumber") != str(group.gid):
            plan.errors.append(
                f"group {group.name}: gidNumber in LDAP is {existing.first('gidNumber')} but the "
                f"config declares {group.gid}; refusing to renumber (shared files are owned by "
                "the old number). Restore the old gid in the config."
            )
            continue
        step = Step("group", group.name, dn, "unchanged")
        _member_changes(step, existing.get("memberUid"), group.members)
        if existing.disabled:
            step.changes["description"] = [(ldap3.MODIFY_DELETE, [DISABLED])]
            step.details.insert(0, "re-enabled")
        if step.changes:
            step.outcome = "updated"
        plan.steps.append(step)
    for key, entry in sorted(groups.items()):
        name = entry.first("cn")
        if not entry.managed or name is None or key != f"cn={name}" or name in declared:
            continue
        step = Step("group", name, entry.dn, "unchanged")
        _member_changes(step, entry.get("memberUid"), ())
        if not entry.disabled:
            step.changes.setdefault("description", []).append((ldap3.MODIFY_ADD, [DISABLED]))
        if step.changes:
            step.outcome = "disabled"
        plan.steps.append(step)
    return plan


def _member_changes(step: Step, current: Sequence[str], wanted: Sequence[str]) -> None:
    add = sorted(set(wanted) - set(current))
    remove = sorted(set(current) - set(wanted))
    ops: list[tuple[str, list[str]]] = []
    if add:
        ops.append((ldap3.MODIFY_ADD, add))
    if remove:
        ops.append((ldap3.MODIFY_DELETE, remove))
    if ops:
        step.changes["memberUid"] = ops
        step.details.extend([f"+{m}" for m in add] + [f"-{m}" for m in remove])


def load_desired(path: str) -> Desired:
    """Read the desired-state JSON; refuse a file readable by group/others (it holds secrets)."""
    try:
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise InputError(f"{path} holds passwords and must be mode 600 "
                             f"(is {stat.S_IMODE(st.st_mode):o})")
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:  # message carries position only, never content
        raise InputError(f"{path} is not valid JSON (line {exc.lineno})") from None
    try:
        parsed = _desired.parse_desired(doc)
    except _desired.DesiredStateError as exc:
        raise InputError(str(exc)) from None
    for user in parsed.users:
        # ldap3 SASLprep-normalises simple-bind passwords (as the hub's ldapauthenticator
        # will at login); one it cannot prepare could never be used, so refuse it now.
        try:
            sasl_prep(user.password)
        except LDAPSASLPrepError as exc:  # the message names the rule, not the password
            raise InputError(f"user {user.name}: password unusable for LDAP: {exc}") from None
    return parsed


def read_secret(path: str) -> str:
    """A password file's content without trailing CR/LF (same rule as the bootstrap)."""
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read().rstrip("\r\n")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not value:
        raise InputError(f"{path} is empty")
    return value


class Directory:
    """The admin connection plus the operations reconcile needs."""

    def __init__(self, server_url: str, base_dn: str, admin_password: str, wait: float) -> None:
        self.base_dn = base_dn
        self.server = ldap3.Server(server_url, get_info=ldap3.NONE, connect_timeout=5)
        deadline = time.monotonic() + wait
        while True:
            try:
                self.conn = ldap3.Connection(
                    self.server, user=f"cn=admin,{base_dn}", password=admin_password,
                    raise_exceptions=True, receive_timeout=30, auto_bind=ldap3.AUTO_BIND_NO_TLS,
                )
                break
            except LDAPSocketOpenError as exc:
                if time.monotonic() >= deadline:
                    raise ReconcileError(f"cannot reach {server_url}: {exc}") from None
                time.sleep(1)
            except LDAPException as exc:
                raise ReconcileError(f"admin bind to {server_url} failed: "
                                     f"{type(exc).__name__}") from None

    def entries(self, base: str, scope: str) -> list[Entry]:
        """All posix entries under base (static filter: no user input reaches a filter)."""
        self.conn.search(base, "(|(objectClass=posixAccount)(objectClass=posixGroup)"
                         "(objectClass=inetOrgPerson))", search_scope=scope, attributes=ATTRS)
        out = []
        for item in self.conn.response or []:
            if item.get("type") != "searchResEntry":
                continue
            attrs = {}
            for name, values in item["attributes"].items():
                vals = values if isinstance(values, list) else [values]
                attrs[name.lower()] = [v.decode("utf-8", "replace") if isinstance(v, bytes)
                                       else str(v) for v in vals]
            out.append(Entry(item["dn"], attrs))
        return out

    def password_ok(self, dn: str, password: str) -> bool:
        """True if a simple bind as dn with password succeeds (49 invalidCredentials: False)."""
        conn = ldap3.Connection(self.server, user=dn, password=password, raise_exceptions=False,
                                receive_timeout=30)
        try:
            if conn.bind():
                return True
            code = conn.result.get("result") if conn.result else None
            if code == INVALID_CREDENTIALS:
                return False
            raise ReconcileError(f"checking the password of {dn}: LDAP result {code}")
        finally:
            conn.unbind()

    def apply(self, step: Step) -> None:
        """Write one step: add, modify, then set the password via RFC 3062 (server hashes)."""
        try:
            if step.add is not None:
                attrs = {k: v for k, v in step.add.items() if k != "objectClass"}
                self.conn.add(step.dn, step.add["objectClass"], attrs)
            if step.changes:
                self.conn.modify(step.dn, step.changes)
            if step.password is not None:
                ok = self.conn.extend.standard.modify_password(user=step.dn,
                                                               new_password=step.password)
                if not ok:
                    raise ReconcileError(f"setting the password of {step.dn} failed")
        except LDAPException as exc:
            result = self.conn.result.get("description") if self.conn.result else None
            raise ReconcileError(f"{step.kind} {step.name}: {type(exc).__name__}: "
                                 f"{result or exc}") from None


def with_assigned_uids(desired: Desired, people: dict[str, Entry],
                       all_entries: list[Entry]) -> Desired:
    """desired with every user's uid filled in: declared, kept from LDAP, or newly assigned."""
    remembered = {}
    for key, entry in people.items():
        number = entry.first("uidNumber")
        if key.startswith("uid=") and number is not None and number.isdigit():
            remembered[key[len("uid="):]] = int(number)
    taken = {int(n) for n in _id_owners(all_entries, "posixAccount", "uidNumber") if n.isdigit()}
    try:
        uids = _desired.assign_uids([(u.name, u.uid) for u in desired.users], remembered, taken)
    except _desired.DesiredStateError as exc:
        raise InputError(str(exc)) from None
    return replace(desired, users=tuple(replace(u, uid=uids[u.name]) for u in desired.users))


def reconcile(desired: Desired, directory: Directory, dry_run: bool = False) -> Plan:
    """Plan against the live directory and, unless there are conflicts or dry_run, apply."""
    base = desired.base_dn
    all_entries = directory.entries(base, ldap3.SUBTREE)
    people = _index(e for e in all_entries
                    if e.dn.lower().endswith("," + people_dn(base).lower())
                    and e.dn.count(",") == people_dn(base).count(",") + 1)
    desired = with_assigned_uids(desired, people, all_entries)
    groups = _index(e for e in all_entries
                    if e.dn.lower().endswith("," + groups_dn(base).lower())
                    and e.dn.count(",") == groups_dn(base).count(",") + 1)
    user_plan = plan_users(desired, people, all_entries, directory.password_ok)
    group_plan = plan_groups(desired, groups, all_entries)
    plan = Plan(steps=user_plan.steps + group_plan.steps,
                errors=user_plan.errors + group_plan.errors)
    if plan.errors or dry_run:
        return plan
    # Plan order: users, then groups (which name users in memberUid).
    for step in plan.steps:
        if step.outcome != "unchanged":
            directory.apply(step)
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see the module docstring for the exit statuses."""
    parser = argparse.ArgumentParser(description="Reconcile LDAP users/groups with config.")
    parser.add_argument("--desired", required=True, help="desired-state JSON (mode 600)")
    parser.add_argument("--dry-run", action="store_true", help="plan and print, change nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for the server to accept connections")
    args = parser.parse_args(argv)
    try:
        desired = load_desired(args.desired)
        admin_password = read_secret(desired.admin_password_file)
        directory = Directory(desired.server, desired.base_dn, admin_password, args.wait)
        plan = reconcile(desired, directory, dry_run=args.dry_run)
    except InputError as exc:
        print(f"reconcile: invalid input: {exc}", file=sys.stderr)
        return 2
    except ReconcileError as exc:
        print(f"reconcile: LDAP error: {exc}", file=sys.stderr)
        return 3
    except LDAPException as exc:  # e.g. the connection dropped during the read
        print(f"reconcile: LDAP error: {type(exc).__name__}", file=sys.stderr)
        return 3
    if plan.errors:
        for error in plan.errors:
            print(f"reconcile: ERROR: {error}", file=sys.stderr)
        print(f"reconcile: {len(plan.errors)} conflict(s); nothing was changed", file=sys.stderr)
        return 1
    for step in plan.steps:
        if step.outcome != "unchanged":
            print(("would " if args.dry_run else "") + step.describe())
    counts = plan.counts()
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, **counts}, sort_keys=True))
    else:
        for kind, c in counts.items():
            print(f"reconcile: {kind} created={c['created']} updated={c['updated']} "
                  f"disabled={c['disabled']} unchanged={c['unchanged']}"
                  + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
