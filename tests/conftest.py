"""Suite-wide rules. `needs`: a test that runs a real system tool (or needs root) says so, and
fails (never skips) with the command that installs it when the tool is missing: a fresh machine
gets a red, actionable result instead of a pass that checked nothing. `make unit` leaves these
tests out (it needs nothing but the venv); `make tools` installs the tools and runs them.

Collection: a marked directory that `-m` cannot select is not imported (tests/marked_dirs.py).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from marked_dirs import left_out

COLLECTOR = gc.get_threshold()
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


@pytest.fixture(autouse=True)
def collector_as_it_was() -> Iterator[None]:
    """__main__ tunes the garbage collector for its own process and freezes what it declared
    (tests/harness.py runs it here): after each test the worker gets its setting back and every
    object back to the collector."""
    yield
    gc.set_threshold(*COLLECTOR)
    gc.unfreeze()
