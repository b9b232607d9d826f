"""Wall time of the whole program under Pulumi mocks, per example stack, imports included.

Each run is a fresh interpreter (so imports count, as they do for `pulumi up`); prints the median
and the worst of a few runs, then the wall time of the mock-based unit tests. Targets: <= 2 s per
stack, <= 20 s for the unit tests. Figures only: this machine is shared and noisy.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
ONE_RUN = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from harness import run_program
run = run_program({stack!r})
print(len(run.resources))
"""
UNIT_TESTS = ["tests/test_config.py", "tests/test_service_config.py", "tests/test_program.py",
              "tests/test_platform.py"]


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return time.perf_counter() - start, out


def main() -> None:
    print(f"{'stack':<8}{'resources':>10}{'median s':>10}{'max s':>8}  (fresh process, {RUNS} runs)")
    for stack in ("dev", "aws", "local"):
        code = ONE_RUN.format(root=str(ROOT), tests=str(ROOT / "tests"), stack=stack)
        times, count = [], ""
        for _ in range(RUNS):
            seconds, out = timed([sys.executable, "-c", code])
            times.append(seconds)
            count = out.split()[-1]
        print(f"{stack:<8}{count:>10}{statistics.median(times):>10.2f}{max(times):>8.2f}")
    seconds, out = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *UNIT_TESTS])
    print(f"mock unit tests: {seconds:.1f} s ({out.strip().splitlines()[-1]})")


if __name__ == "__main__":
    main()
