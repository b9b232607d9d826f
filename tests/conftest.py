"""Suite-wide rules. `needs`: a test that runs a real system tool says so, and fails (never
skips) with the command that installs it when the tool is missing: a fresh machine gets a red,
actionable result instead of a pass that checked nothing. `make unit` installs them first.
"""

from __future__ import annotations

import shutil

import pytest

INSTALL = "sudo scripts/install-system-deps.sh unit   (`make unit` runs it)"


def _installed(command: str) -> bool:
    return bool(shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("needs"):
        missing = [c for c in marker.args if not _installed(c)]
        if missing:
            pytest.fail(f"{', '.join(missing)} not installed: run {INSTALL}", pytrace=False)
