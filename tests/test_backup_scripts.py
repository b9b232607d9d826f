"""The backup and restore shell scripts: lint, and the refusals that need no services."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "services" / "backup" / "jhc-backup", ROOT / "scripts" / "restore.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
@pytest.mark.needs("shellcheck")
def test_shellcheck_clean(script: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: run scripts/install-system-deps.sh")
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False, env=env)


def test_restore_needs_a_snapshot_and_a_running_backup_container(tmp_path: Path) -> None:
    assert run(SCRIPTS[1]).returncode == 2
    assert run(SCRIPTS[1], "--bogus", "latest").returncode == 2
    # a docker command that finds no backup container: refused before anything is stopped
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho \"$@\" >> " + str(tmp_path / "calls") + "\nexit 1\n")
    fake.chmod(0o755)
    result = run(SCRIPTS[1], "--stack", "lab", "latest",
                 env={"PATH": "/usr/bin:/bin", "JHC_DOCKER": str(fake)})
    assert result.returncode == 1 and "jhc-lab-backup is not running" in result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["inspect -f {{.State.Running}} jhc-lab-backup"]  # nothing stopped


def test_backup_script_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "JHC_BACKUP_STATE_DIR": str(tmp_path)}
    assert run(SCRIPTS[0], "bogus", env=env).returncode == 2
    assert "usage" in run(SCRIPTS[0], "restore", env=env).stderr
    loop = run(SCRIPTS[0], "loop", env={**env, "JHC_BACKUP_TIME": "25:00"})
    assert loop.returncode == 1 and "not HH:MM" in loop.stderr
    health = run(SCRIPTS[0], "health", env=env)
    assert health.returncode == 1 and "no successful backup yet" in health.stdout
    (tmp_path / "last-success").write_text("1000 1970-01-01T00:16:40Z\n")
    stale = run(SCRIPTS[0], "health", env=env)
    assert stale.returncode == 1 and "older than 26h" in stale.stdout


def stand_in_environment(tmp_path: Path, bin_dir: Path) -> dict[str, str]:
    """jhc-backup's environment with stand-in tools first on PATH and scratch directories."""
    (tmp_path / "pw").write_text("x\n")
    (tmp_path / "data").mkdir()
    return {"PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
            "JHC_BACKUP_STATE_DIR": str(tmp_path / "state"),
            "JHC_DATA_DIR": str(tmp_path / "data"), "RESTIC_REPOSITORY": str(tmp_path / "repo"),
            "JHC_PG_PASSWORD_FILE": str(tmp_path / "pw"),
            "JHC_HUB_KEY_FILES": str(tmp_path / "pw"), "JHC_BACKUP_CHECK_DAYS": "0"}


def test_a_failed_restic_step_fails_the_run(tmp_path: Path) -> None:
    """Every step counts, not only the last one: a failing `restic backup` followed by a
    succeeding `restic forget` is a failed run. Stand-in commands on PATH (this tests the
    script's control flow; the real tools run in tests/integration/test_backup_restore.py)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {
        "restic": 'if [ "$1" = backup ]; then echo "unreadable file" >&2; exit 3; fi; exit 0',
        "pg_dump": 'for a; do case $a in --file=*) : > "${a#--file=}";; esac; done',
        "slapcat": 'while [ $# -gt 0 ]; do [ "$1" = -l ] && : > "$2"; shift; done',
    }
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = stand_in_environment(tmp_path, bin_dir)
    result = run(SCRIPTS[0], "run", env=env)
    assert result.returncode == 1 and "BACKUP FAILED" in result.stderr, result.stderr
    assert not (tmp_path / "state" / "last-success").exists()
    assert run(SCRIPTS[0], "health", env=env).returncode == 1


@pytest.mark.parametrize("ldap_dir, ok", [("", True), ("/etc/ldap/slapd.d", False)])
def test_a_deployment_without_a_directory_is_backed_up_without_slapcat(
        tmp_path: Path, ldap_dir: str, ok: bool) -> None:
    """GitHub logins deploy no LDAP: an empty JHC_LDAP_CONFIG_DIR skips the export; a set one
    makes a failing slapcat fail the run. Stand-in tools on PATH record their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    tools = {
        "restic": "exit 0",
        "pg_dump": 'for a; do case $a in --file=*) : > "${a#--file=}";; esac; done',
        "slapcat": "exit 1",
    }
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\necho {name} >> {calls}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {**stand_in_environment(tmp_path, bin_dir), "JHC_LDAP_CONFIG_DIR": ldap_dir}
    result = run(SCRIPTS[0], "run", env=env)
    assert (result.returncode == 0) is ok, result.stderr
    assert ("slapcat" in calls.read_text().split()) is not ok
    assert (tmp_path / "state" / "last-success").exists() is ok
