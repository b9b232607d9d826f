"""Upgrading a stack deployed with one RandomPassword per user: scripts/keep_initial_passwords.py
copies the generated passwords into config first, so nobody's password changes."""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from harness import ROOT, plain, run_program
from scripts.keep_initial_passwords import passwords_to_keep

USERS = [{"name": "alice", "groups": []}, {"name": "bob", "password": "correct-horse-battery"},
         {"name": "carol"}, {"name": "dora"}]
# What the old release exported as initialPasswords (one RandomPassword each). Since then erin
# has left and bob was given a password in config (not yet deployed): neither is touched.
LEGACY = {"alice": "OldAlicePassword0001", "carol": "12345678901234567890",
          "erin": "OldErinPassword00003", "bob": "OldBobPassword000004"}


def apply(users: list[dict], path: str, value: str) -> None:
    """What `pulumi config set --path 'users[i].password'` does to the list."""
    index = int(re.fullmatch(r"users\[(\d+)\]\.password", path).group(1))
    users[index]["password"] = value


def test_kept_passwords_reach_ldap_unchanged() -> None:
    users = copy.deepcopy(USERS)
    for _, path, value in passwords_to_keep(users, LEGACY):
        apply(users, path, value)
    assert [u.get("password") for u in users] == [
        "OldAlicePassword0001", "correct-horse-battery", "12345678901234567890", None]
    run = run_program("dev", overrides={"users": users, "groups": []}, secret_keys=("users",))
    desired = json.loads(plain(run.resources["jhc-ldap-reconcile"].inputs["stdin"]))
    got = {u["name"]: u["password"] for u in desired["users"]}
    assert got["alice"] == LEGACY["alice"] and got["carol"] == LEGACY["carol"]
    assert got["bob"] == "correct-horse-battery"
    assert set(plain(run.outputs["initialPasswords"])) == {"dora"}  # new: generated


def test_the_script_passes_passwords_on_stdin_only(tmp_path: Path) -> None:
    """Run against a stand-in for the pulumi CLI that records its arguments and standard input."""
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "pulumi"
    answers = {"stack output initialPasswords": LEGACY, "config get users": USERS}
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    fake.write_text(f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open({str(log)!r}, "a") as f:
    f.write(json.dumps({{"args": args, "stdin": stdin}}) + "\\n")
answers = json.load(open({str(tmp_path / "answers.json")!r}))
if " ".join(args[:3]) in answers:
    print(json.dumps(answers[" ".join(args[:3])]))
""")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    out = subprocess.run([sys.executable, "scripts/keep_initial_passwords.py", "--stack", "lab"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    sets = [c for c in calls if c["args"][:2] == ["config", "set"]]
    assert [(c["args"][-3], c["stdin"]) for c in sets] == [
        ("users[0].password", "OldAlicePassword0001"), ("users[2].password", "12345678901234567890")]
    for c in sets:
        assert {"--secret", "--path"} <= set(c["args"]) and c["args"][-2:] == ["--stack", "lab"]
        assert c["args"][c["args"].index("--type") + 1] == "string"
    for c in calls:
        assert not set(LEGACY.values()) & set(c["args"]), c["args"]
    for value in LEGACY.values():
        assert value not in out
    assert "2 password(s) kept" in out
