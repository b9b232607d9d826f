"""stop_process leaves nothing behind: a hub's managed services run in sessions of their own
(jupyterhub/services/service.py: start_new_session=True), so killing the hub's process group
alone left every revocation check running (19 of them after one `make test`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import stack

# A parent that starts a child the way JupyterHub starts a managed service, then ignores
# SIGTERM (a hub busy stopping), so stop_process has to kill it.
PARENT = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_parent_takes_the_sessions_of_its_children_along() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert stack.child_sessions(parent.pid) == [child]
        assert os.getpgid(child) == child != os.getpgid(parent.pid)
        stack.stop_process(parent, timeout=1)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived stop_process"
            time.sleep(0.1)
    finally:
        stack.kill_groups(parent.pid, child)
