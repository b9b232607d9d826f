"""Wall time of the whole program under Pulumi mocks, per example stack, imports included.

Each run is a fresh interpreter (so imports count, as they do for `pulumi up`); prints the median
and the worst of a few runs and how many full GC collections the run made, then the wall time of
the mock-based unit tests (skipped with --program-only). Targets: <= 2 s per stack at class scale
(500 users, 10 groups, 8 images; OpenStack and AWS), <= 20 s for the unit tests. Figures only:
this machine is shared and noisy, so the CPU seconds of each run (user + system, what an idle
machine's wall time approaches) are printed beside the wall time.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
SUITE_RUNS = 3
ONE_RUN = """
import gc, json, sys
sys.path[:0] = [{root!r}, {tests!r}]
from harness import run_program
run = run_program({stack!r}, overrides=json.loads({overrides!r}), secret_keys=("users",))
print(len(run.resources), gc.get_stats()[2]["collections"])
"""
CLASS = {  # class scale: 500 users in 10 groups, 8 menu entries over the shipped images
    "groups": [{"name": f"group{g}"} for g in range(10)],
    "users": [{"name": f"student{i:04d}", "groups": [f"group{i % 10}"]} for i in range(500)],
    "images": [{"name": f"img{k}", "path": ("minimal", "scipy", "r")[k % 3],
                "groups": [f"group{k}"]} for k in range(8)],
}
SCENARIOS = [("dev", "example", {}), ("aws", "example", {}), ("local", "example", {}),
             ("dev", "class", CLASS), ("aws", "class", CLASS)]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) of the child, its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT,
                         env=env).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, out


def main() -> None:
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'stack':<7}{'scale':<9}{'resources':>10}{'wall med':>10}{'wall max':>10}{'cpu med':>9}"
          f"{'full GCs':>10}  (s, fresh process, {RUNS} runs)")
    for stack, scale, overrides in SCENARIOS:
        code = ONE_RUN.format(root=str(ROOT), tests=str(ROOT / "tests"), stack=stack,
                              overrides=json.dumps(overrides))
        walls, cpus, count, full = [], [], "", ""
        for _ in range(RUNS):
            wall, cpu, out = timed([sys.executable, "-c", code])
            walls.append(wall)
            cpus.append(cpu)
            count, full = out.split()[-2:]
        print(f"{stack:<7}{scale:<9}{count:>10}{statistics.median(walls):>10.2f}{max(walls):>10.2f}"
              f"{statistics.median(cpus):>9.2f}{full:>10}")
    if "--program-only" in sys.argv[1:]:
        return
    # `make unit` itself, so the figure follows its options (the first run on a fresh clone has
    # no group times in pytest's cache yet: tests/group_order.py)
    walls, cpus = [], []
    for _ in range(SUITE_RUNS):
        wall, cpu, out = timed(["make", "--no-print-directory", "unit"])
        walls.append(wall)
        cpus.append(cpu)
    print(f"make unit: {statistics.median(walls):.1f} s wall median, {max(walls):.1f} s max, "
          f"{statistics.median(cpus):.1f} s cpu median, {SUITE_RUNS} runs "
          f"({out.strip().splitlines()[-1].strip('= ')})")


if __name__ == "__main__":
    main()
