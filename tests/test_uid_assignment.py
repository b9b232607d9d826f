"""uids at class scale: distinct without a manual step, and never moved once assigned.

The pure assignment (services/ldap/desired.assign_uids, what the LDAP reconcile runs against
the directory's entries) is driven by hypothesis through add/remove/reorder sequences against a
model of the directory that, like LDAP, keeps removed (disabled) entries. The hub's registry
for GitHub logins runs against a real database (SQLite here; PostgreSQL in tests/integration).
The reconcile on a real slapd is in tests/test_ldap.py.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import login_names

from services.hub import jhc_ids
from services.ldap import desired
from services.ldap.desired import DesiredStateError, assign_uids, probe_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "hub"))
import jhc_uid_registry  # noqa: E402  (as the hub imports it, from its own directory)

UID_BASE, ID_SPAN = 200_000, 1_000_000  # frozen: literal here on purpose


def first_choice(name: str) -> int:
    """What every earlier version gave a name: sha256, first 8 bytes, modulo the span."""
    return UID_BASE + int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % ID_SPAN


def colliding_pairs(count: int) -> list[tuple[str, str]]:
    """Real collisions of the first choice among generated names (birthday: ~1,250 names)."""
    owner: dict[int, str] = {}
    pairs = []
    i = 0
    while len(pairs) < count:
        name = f"s{i}"
        uid = first_choice(name)
        if uid in owner:
            pairs.append((owner[uid], name))
        else:
            owner[uid] = name
        i += 1
    return pairs


PAIRS = colliding_pairs(3)
NAMES = login_names(9)


def test_first_choice_is_the_frozen_derived_id() -> None:
    assert probe_uid("alice", 0) == jhc_ids.probe_uid("alice", 0) == 420207  # golden value
    for name in ("alice", "bob", "s1", "x" * 32):
        assert probe_uid(name, 0) == first_choice(name) == jhc_ids.derived_id(name, UID_BASE)


@settings(max_examples=50, deadline=None)
@given(NAMES, st.integers(0, desired.MAX_PROBES))
def test_ldap_and_hub_probe_the_same_sequence(name: str, attempt: int) -> None:
    assert probe_uid(name, attempt) == jhc_ids.probe_uid(name, attempt)
    assert UID_BASE <= probe_uid(name, attempt) < UID_BASE + ID_SPAN


def test_collisions_are_resolved_and_the_earlier_user_keeps_their_uid() -> None:
    a, b = PAIRS[0]
    assert first_choice(a) == first_choice(b)
    first = assign_uids([(a, None)], {}, ())
    assert first == {a: first_choice(a)}
    # b arrives later, declared before a: a keeps its number, b takes its next candidate.
    second = assign_uids([(b, None), (a, None)], first, first.values())
    assert second[a] == first[a]
    assert second[b] == probe_uid(b, 1) != second[a]


def test_explicit_uids_win_and_are_never_assigned_to_others() -> None:
    a, b = PAIRS[1]
    got = assign_uids([(a, None), (b, first_choice(a))], {}, ())
    assert got[b] == first_choice(a) and got[a] == probe_uid(a, 1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "remove", "shuffle"]),
                          st.lists(NAMES, min_size=1, max_size=6), st.randoms()),
                min_size=1, max_size=8))
def test_uids_never_move_through_adds_removes_and_reorders(steps) -> None:
    directory: dict[str, int] = {}   # every entry ever created: LDAP disables, never deletes
    declared: list[str] = []
    # Forced collisions: every pair collides on its first choice.
    pool = [n for pair in PAIRS for n in pair]
    for op, names, rnd in steps:
        if op == "add":
            declared += [n for n in names + [rnd.choice(pool)] if n not in declared]
        elif op == "remove":
            declared = [n for n in declared if n not in names and rnd.random() < 0.7]
        else:
            rnd.shuffle(declared)
        got = assign_uids([(n, None) for n in declared], directory, directory.values())
        for name, uid in got.items():
            assert directory.setdefault(name, uid) == uid, f"{name} moved"
        assert len(set(directory.values())) == len(directory), "two users share a uid"


def test_ten_thousand_users_with_collisions_get_distinct_uids() -> None:
    names = [f"student{i:05d}" for i in range(10_000)] + [n for pair in PAIRS for n in pair]
    collisions = len(names) - len({first_choice(n) for n in names})
    assert collisions >= 3  # the first choice alone would have given some users the same uid
    got = assign_uids([(n, None) for n in reversed(names)], {}, ())
    assert len(set(got.values())) == len(names)
    assert all(UID_BASE <= uid < UID_BASE + ID_SPAN for uid in got.values())
    # declaration order does not matter for new users
    assert assign_uids([(n, None) for n in names], {}, ()) == got


def test_exhausted_probes_name_the_user() -> None:
    taken = {probe_uid("zed", k) for k in range(desired.MAX_PROBES)}
    with pytest.raises(DesiredStateError, match="user zed: no free uid"):
        assign_uids([("zed", None)], {}, taken)


# ----------------------------------------------------------------- the hub's registry


def registry(tmp_path: Path, explicit: dict[str, int] | None = None):
    return jhc_uid_registry.UidRegistry(f"sqlite:///{tmp_path}/hub.sqlite", explicit or {})


def test_registry_assigns_once_and_remembers_across_restarts(tmp_path: Path) -> None:
    a, b = PAIRS[0]
    hub = registry(tmp_path)
    assert hub.uid_for(a) == first_choice(a)  # existing GitHub homes keep their owner
    assert hub.uid_for(b) == probe_uid(b, 1)  # collision resolved, no manual step
    restarted = registry(tmp_path)
    assert (restarted.uid_for(b), restarted.uid_for(a)) == (probe_uid(b, 1), first_choice(a))


def test_registry_keeps_explicit_uids_for_their_owners(tmp_path: Path) -> None:
    a, b = PAIRS[1]
    hub = registry(tmp_path, {b: first_choice(a)})
    assert hub.uid_for(a) == probe_uid(a, 1)
    assert hub.uid_for(b) == first_choice(a)


def test_registry_refuses_an_explicit_uid_someone_already_holds(tmp_path: Path) -> None:
    a, _ = PAIRS[2]
    assert registry(tmp_path).uid_for(a) == first_choice(a)
    late = registry(tmp_path, {"newcomer": first_choice(a)})
    with pytest.raises(jhc_uid_registry.UidRegistryError, match="already belongs to"):
        late.uid_for("newcomer")


def test_registry_unique_constraint_holds_against_a_stale_writer(tmp_path: Path) -> None:
    """Two hub processes: the second does not see the first's row yet when it probes."""
    import sqlalchemy as sa

    a, b = PAIRS[0]
    first = registry(tmp_path)
    assert first.uid_for(a) == first_choice(a)
    with first.engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.insert(jhc_uid_registry._uids).values(name=b, uid=first_choice(a)))
    assert registry(tmp_path).uid_for(b) == probe_uid(b, 1)
