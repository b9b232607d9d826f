"""Suite-wide rules. `needs`: a test that runs a real system tool (or needs root) says so, and
fails (never skips) with the command that installs it when the tool is missing: a fresh machine
gets a red, actionable result instead of a pass that checked nothing. `make unit` leaves these
tests out (it needs nothing but the venv); `make tools` installs the tools and runs them.

Collection: a marked directory that `-m` cannot select is not imported (tests/marked_dirs.py).

Scheduling (`--dist loadgroup`, Makefile): every test gets an xdist group, so a worker runs whole
groups. Unit tests are grouped by file (a file's program runs are cached per process), except
the files that import JupyterHub (its application ≈4.5 s per process, most of it jsonschema
building an IRI grammar; the spawner and authenticators ≈1 s), which share one group. The
tests of real tools and engines form two streams, each run one test at a time: the swarm (its
own nested engines) and the browser tests in one, everything else in the other; they share the
machine's Docker engine, which is why the image builds take a lock
(tests/integration/docker_helpers.py) and the Makefile starts and stops it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from group_order import CACHE_KEY, longest_first
from marked_dirs import MARKED_DIRS, left_out

#: the program's own collector setting (__main__.py), for the whole test process: a worker holds
#: every cached program run, and each full collection rescans them all (≈0.1 s each)
COLLECTOR = (700, 10, 100)
gc.set_threshold(*COLLECTOR)
#: unit test files that import JupyterHub (one group: the import is paid once)
JUPYTERHUB = {"test_hub_config.py", "test_hub_contract.py", "test_deployed_hub.py",
              "test_swarm_platform.py"}
#: engine tests that run beside the others (tests/integration/test_swarm*.py use engines of
#: their own; tests/e2e, the browser, uses the shared one under its own names)
SECOND_STREAM = {"test_swarm.py", "test_swarm_steps.py", "test_local_stack.py"}
#: seconds per xdist group in this run (the controller's reports; tests/group_order.py)
_SECONDS: defaultdict[str, float] = defaultdict(float)
INSTALL = "sudo scripts/install-system-deps.sh tools   (`make tools` runs it)"
#: what `needs` accepts beside commands on PATH
PSEUDO = {
    "root": lambda: os.geteuid() == 0,
    # Debian keeps the server binaries off PATH
    "postgresql": lambda: any(Path("/usr/lib/postgresql").glob("*/bin/postgres")),
}


def _installed(command: str) -> bool:
    if command in PSEUDO:
        return PSEUDO[command]()
    return bool(shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    # pulumi.Output (a secret config value, the mocks) needs a current event loop, which the
    # language host always has; a test that ran asyncio.run() earlier in this worker left none.
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    for marker in item.iter_markers("needs"):
        missing = [c for c in marker.args if not _installed(c)]
        if "root" in missing:
            pytest.fail("runs as root only (system services, other uids): run it as root", pytrace=False)
        if missing:
            pytest.fail(f"{', '.join(missing)} not installed: run {INSTALL}", pytrace=False)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return True if left_out(collection_path, config.getoption("markexpr")) else None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    group_of: dict[pytest.Item, str] = {}
    for item in items:
        name = item.path.name
        in_engine_dir = any(d in item.path.parents for d in MARKED_DIRS.values())
        if in_engine_dir or item.get_closest_marker("needs"):
            group = "stream-2" if name in SECOND_STREAM else "stream-1"
        else:
            group = "jupyterhub" if name in JUPYTERHUB else name
        item.add_marker(pytest.mark.xdist_group(group))
        group_of[item] = group
    if getattr(config, "cache", None) is not None:  # every worker reads the same file
        order = longest_first(Counter(group_of.values()), config.cache.get(CACHE_KEY, {}))
        rank = {group: i for i, group in enumerate(order)}
        items.sort(key=lambda item: rank[group_of[item]])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SECONDS[report.nodeid.rpartition("@")[2]] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    # The controller of a `--dist loadgroup` run (its node ids end in "@<group>") writes.
    if config.getoption("dist", "no") == "loadgroup" and not hasattr(config, "workerinput") \
            and getattr(config, "cache", None) is not None and _SECONDS:
        config.cache.set(CACHE_KEY, {**config.cache.get(CACHE_KEY, {}), **_SECONDS})


def pytest_unconfigure() -> None:
    # The cached program runs (tests/harness.py) live until exit, and pytest's last look for
    # unraisable exceptions runs five full collections over them (≈3 s a worker, waited for):
    # one collection finds the garbage, then what is left is no longer rescanned.
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def collector_as_it_was() -> Iterator[None]:
    """__main__ tunes the garbage collector for its own process and freezes what it declared
    (tests/harness.py runs it here): after each test the worker gets its setting back and every
    object back to the collector."""
    yield
    gc.set_threshold(*COLLECTOR)
    gc.unfreeze()
