"""The hub's uid registry for GitHub logins on a real PostgreSQL, with concurrent hub writers.

Why here: the hub runs on PostgreSQL; its unique constraint, not our code, must be what stops two
logins from getting one uid when spawns race (two hub processes, or a hub restart mid-spawn).
"""

from __future__ import annotations

import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import stack

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "hub"))
import jhc_uid_registry  # noqa: E402
from jhc_ids import probe_uid  # noqa: E402


@pytest.fixture(scope="module")
def db_url() -> Iterator[str]:
    pg = stack.start_postgres()
    try:
        password = urllib.parse.quote(pg.password, safe="")
        yield f"postgresql+psycopg2://{pg.user}:{password}@127.0.0.1:{pg.port}/{stack.DB_NAME}"
    finally:
        pg.stop()


def colliding_pairs(count: int) -> list[tuple[str, str]]:
    owner: dict[int, str] = {}
    pairs: list[tuple[str, str]] = []
    i = 0
    while len(pairs) < count:
        uid = probe_uid(f"gh{i}", 0)
        if uid in owner:
            pairs.append((owner[uid], f"gh{i}"))
        else:
            owner[uid] = f"gh{i}"
        i += 1
    return pairs


def test_concurrent_hubs_never_share_a_uid(db_url: str) -> None:
    pairs = colliding_pairs(4)
    names = [n for pair in pairs for n in pair] + [f"login{i}" for i in range(200)]
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def hub(order: list[str]) -> None:
        try:
            registry = jhc_uid_registry.UidRegistry(db_url, {})  # its own engine: a process
            results.append({n: registry.uid_for(n) for n in order})
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=hub, args=(names[::step],)) for step in (1, -1)]
    threads += [threading.Thread(target=hub, args=(names[k::3] + names,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    merged: dict[str, int] = {}
    for result in results:
        for name, uid in result.items():
            assert merged.setdefault(name, uid) == uid, f"{name} got two uids"
    assert len(set(merged.values())) == len(names)
    for a, b in pairs:
        assert {merged[a], merged[b]} & {probe_uid(a, 0)}  # one of them keeps the first choice
    restarted = jhc_uid_registry.UidRegistry(db_url, {})
    assert {n: restarted.uid_for(n) for n in names} == merged
