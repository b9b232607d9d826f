"""The host-ready step's script, with `ssh` replaced by a stub that plays a booting host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness import ROOT

SCRIPT = ROOT / "scripts" / "wait-host-ready.sh"
# The stub refuses the first $UNREACHABLE connections, then answers `cloud-init status` with
# $STATUS and prints a fake cloud-init log for `sudo tail`. It records every call.
STUB = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
n=$(wc -l < "$CALLS")
(( n <= UNREACHABLE )) && { echo "ssh: connect to host: Connection refused" >&2; exit 255; }
case "$*" in
  *"cloud-init status"*) echo "status: error"; exit "$STATUS" ;;
  *"sudo tail"*) echo "E: Unable to locate package docker.io" ;;
esac
exit 0
"""


def run(tmp_path: Path, unreachable: int, status: int, timeout: int = 60):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "ssh"
    stub.write_text(STUB)
    stub.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "UNREACHABLE": str(unreachable), "STATUS": str(status), "HOME": str(tmp_path),
           "JHC_SSH_TARGET": "ubuntu@192.0.2.1", "JHC_SSH_OPTS": "-o BatchMode=yes",
           "JHC_KNOWN_HOSTS": "~/.ssh/jhc.known_hosts", "JHC_READY_TIMEOUT": str(timeout)}
    # sleep is shortened: the script's 5 s back-off would make this test slow.
    fast = tmp_path / "script.sh"
    fast.write_text(SCRIPT.read_text().replace("sleep 5", "sleep 0.05"))
    result = subprocess.run(["bash", str(fast)], env=env, capture_output=True, text=True,
                            timeout=60)
    return result, calls.read_text().splitlines()


def test_waits_for_ssh_then_cloud_init(tmp_path: Path) -> None:
    result, calls = run(tmp_path, unreachable=3, status=0)
    assert result.returncode == 0, result.stderr
    assert "host ready" in result.stdout
    assert calls[-1] == "-o BatchMode=yes ubuntu@192.0.2.1 cloud-init status --wait --long"
    assert len(calls) == 5  # three refused, one `true`, one status
    assert (tmp_path / ".ssh").is_dir()  # the known_hosts directory exists for accept-new


def test_recoverable_errors_do_not_fail(tmp_path: Path) -> None:
    result, _ = run(tmp_path, unreachable=0, status=2)
    assert result.returncode == 0


def test_failed_bootstrap_fails_with_cloud_init_output(tmp_path: Path) -> None:
    result, calls = run(tmp_path, unreachable=0, status=1)
    assert result.returncode == 1
    assert "cloud-init failed on ubuntu@192.0.2.1 (exit 1)" in result.stderr
    assert "Unable to locate package docker.io" in result.stderr
    assert any("sudo tail -n 100 /var/log/cloud-init-output.log" in c for c in calls)


def test_unreachable_host_times_out(tmp_path: Path) -> None:
    result, _ = run(tmp_path, unreachable=10_000, status=0, timeout=1)
    assert result.returncode == 1
    assert "did not accept SSH within 1s" in result.stderr
    assert "Connection refused" in result.stderr


def run_refused(tmp_path: Path, message: str):
    """An ssh that always fails with `message`, with a long timeout: the script must not wait."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "ssh"
    stub.write_text(f'#!/usr/bin/env bash\necho x >> "$CALLS"\necho "{message}" >&2\nexit 255\n')
    stub.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "HOME": str(tmp_path), "JHC_SSH_TARGET": "ubuntu@192.0.2.1", "JHC_SSH_OPTS": "",
           "JHC_KNOWN_HOSTS": "~/.ssh/jhc.known_hosts.d/server-1", "JHC_READY_TIMEOUT": "30"}
    fast = tmp_path / "script.sh"
    fast.write_text(SCRIPT.read_text().replace("sleep 5", "sleep 0.5"))
    result = subprocess.run(["bash", str(fast)], env=env, capture_output=True, text=True,
                            timeout=60)
    return result, calls.read_text().splitlines()


def test_changed_host_key_fails_at_once(tmp_path: Path) -> None:
    result, calls = run_refused(
        tmp_path, "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\\n"
                  "Host key verification failed.")
    assert result.returncode == 1
    assert len(calls) == 1  # no silent retries for 20 minutes
    assert "different host key" in result.stderr and "server-1" in result.stderr
    assert "Host key verification failed" in result.stderr


def test_too_many_keys_fails_at_once_and_says_what_to_do(tmp_path: Path) -> None:
    result, calls = run_refused(
        tmp_path, "Received disconnect from 192.0.2.1 port 22:2: Too many authentication failures")
    assert result.returncode == 1 and len(calls) == 1
    assert "sshPrivateKeyPath" in result.stderr
