"""C concurrent spawns on one host (DockerSpawner) and spread over two Swarm workers
(SwarmSpawner), side by side in one run.

Not a test: it prints figures, and on this machine they are functional, not capacity: the single
host, the manager and both workers are containers sharing the same two cores, so spreading over
workers cannot make anything faster here. What the run shows is that C servers start at once
through SwarmSpawner without failures, how long that takes next to one host, and how the
scheduler spread them (servers per worker, from the swarm's task list). Capacity on real VMs is
planned on paper: docs/admin-guide.md, "Capacity planning (on paper)".

- one host: tests/integration/stack.py's platform (the project's hub settings, DockerSpawner,
  LDAP logins, Postgres), as bench/spawn_latency.py runs it;
- swarm: tests/integration/swarm_nodes.py's manager and two workers (nested Docker engines) with
  the platform of tests/integration/test_swarm.py deployed on the manager (SwarmSpawner, the
  registry, the notebook image by digest, reservations from the limits).
Both get the same notebook image, the same declared users and the same memLimit/cpuLimit.
Loopback and the bench's own containers only; every wait is bounded.

    venv/bin/python bench/swarm_spawns.py [--concurrent 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests" / "integration")]

import docker  # noqa: E402
import spawn_latency as sl  # noqa: E402
import stack  # noqa: E402
import swarm_nodes as sn  # noqa: E402
import test_swarm as ts  # noqa: E402

MEM_LIMIT, CPU_LIMIT = ts.CONFIG["memLimit"], ts.CONFIG["cpuLimit"]


def users(concurrent: int) -> list[str]:
    return [f"con{i:02d}" for i in range(concurrent)]


def spawn_all(target: sl.Target, names: list[str]) -> tuple[list[float], list[str], float]:
    """Every user logs in and spawns at once: (latencies, failures, total seconds)."""
    latencies: list[float] = []
    failures: list[str] = []
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(len(names), 1)) as pool:
        futures = {name: pool.submit(sl.login_and_spawn, target, name) for name in names}
        for name, future in futures.items():
            try:
                latencies.append(future.result())
            except Exception as err:  # noqa: BLE001  a failed spawn is a figure, not a crash
                failures.append(f"{name}: {err}")
    return latencies, failures, time.monotonic() - start


def placement(cluster: sn.Cluster) -> Counter[str]:
    """Running user servers per node, as the manager's task list shows them."""
    out = cluster.manager.sh("docker service ls -q --filter name=jupyter- | xargs -r docker "
                             "service ps --filter desired-state=running --format '{{.Node}}'",
                             check=False)
    return Counter(line for line in out.split() if line)


def one_host(root: Path, client: docker.DockerClient, image: str, names: list[str]) -> dict:
    with sl.platform_target(root, client, image, names, CPU_LIMIT, MEM_LIMIT) as target:
        latencies, failures, total = spawn_all(target, names)
        sl.stop_servers(target, names)
    return {"latencies": latencies, "failures": failures, "total": total, "placement": None}


def swarm(root: Path, client: docker.DockerClient, names: list[str]) -> dict:
    config = {**ts.CONFIG, "users": [{"name": "benchadmin", "groups": ["physics"],
                                      "admin": True}]
              + [{"name": name, "groups": ["physics"]} for name in names]}
    cluster = sn.up(client, root, Path("/tmp/jhc-test-images.log"))
    try:
        deployed = ts.deploy(cluster, config)
        browser = stack.Browser(ts.BASE_URL)
        if browser.login("benchadmin", deployed.passwords["benchadmin"]).status_code != 302:
            raise RuntimeError("benchadmin cannot log in to the swarm hub")
        target = sl.Target("swarm", ts.BASE_URL, deployed.passwords.__getitem__,
                           browser.new_token("benchadmin"))
        latencies, failures, total = spawn_all(target, names)
        spread = placement(cluster)
        sl.stop_servers(target, names)
    finally:
        sn.down(client)
    return {"latencies": latencies, "failures": failures, "total": total, "placement": spread}


def report(rows: dict[str, dict], concurrent: int) -> None:
    print(f"\n{concurrent} concurrent logins + spawns, memLimit {MEM_LIMIT}, cpuLimit {CPU_LIMIT}"
          f" ({os.cpu_count()} CPUs shared by every node: a functional figure, not capacity)")
    print(f"{'':32}{'one host':>12}{'swarm':>12}{'ratio':>9}")
    figures = {}
    for name, row in rows.items():
        lat = row["latencies"]
        figures[name] = {"ok": len(lat), "failed": len(row["failures"]), "total": row["total"],
                         "median": statistics.median(lat) if lat else float("nan"),
                         "p95": sl.p95(lat)}
    for label, key in (("started", "ok"), ("failed", "failed"), ("total time (s)", "total"),
                       ("median latency (s)", "median"), ("p95 latency (s)", "p95")):
        ours, base = figures["swarm"][key], figures["one host"][key]
        ratio = f"{ours / base:8.2f}x" if base else "       -"
        print(f"{label:32}{base:12.2f}{ours:12.2f}{ratio}")
    spread = rows["swarm"]["placement"] or {}
    print("swarm servers per node: " + (", ".join(f"{node} {count}" for node, count in
                                                 sorted(spread.items())) or "none running"))
    for name, row in rows.items():
        for failure in row["failures"][:10]:
            print(f"  {name} failure: {failure[:300]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=20, choices=range(1, 51), metavar="C",
                        help="concurrent logins + spawns on each side (1-50; target 20)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (Docker engine, slapd, PostgreSQL as the postgres account)")
        return 2
    names = users(args.concurrent)
    rows: dict[str, dict] = {}
    with sl.bench_engine() as (client, image):
        with tempfile.TemporaryDirectory(prefix="jhc-bench-swarm-") as tmp:
            for part in ("one", "swarm"):
                (Path(tmp) / part).mkdir()
            rows["one host"] = one_host(Path(tmp) / "one", client, image, names)
            rows["swarm"] = swarm(Path(tmp) / "swarm", client, names)
    report(rows, args.concurrent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
