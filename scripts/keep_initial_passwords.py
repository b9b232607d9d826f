#!/usr/bin/env python3
"""Keeps the generated passwords of a stack deployed before they were derived from one key.

Why: up to this release every user without a password in config had a RandomPassword resource of
their own (jhc-secrets-user-<name>). Now those passwords are derived from one key
(components/platform/secrets.py), so the first `pulumi up` after the upgrade would give each such
user a new password, and the LDAP reconcile would set it. Run this once before that `up`: it
copies each user's current password from the `initialPasswords` output into the stack's config as
an encrypted `users[i].password`, so that nobody's password changes.

    venv/bin/python scripts/keep_initial_passwords.py [--stack NAME]

Passwords go to `pulumi config set` on standard input, never on a command line (which other
local users can read in /proc), and nothing is printed but the users' names. For a stack whose
secrets are encrypted with a passphrase, set PULUMI_CONFIG_PASSPHRASE or _FILE first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def passwords_to_keep(users: Sequence[dict[str, Any]], initial: dict[str, str]
                      ) -> list[tuple[str, str, str]]:
    """(user name, config path, password) for each declared user whose generated password is in
    `initial` and who has no password in config."""
    return [(u["name"], f"users[{i}].password", initial[u["name"]])
            for i, u in enumerate(users)
            if isinstance(u, dict) and u.get("name") in initial and "password" not in u]


def _pulumi(args: list[str], stack: str | None, stdin: str | None = None) -> str:
    command = ["pulumi", *args, *(["--stack", stack] if stack else [])]
    # Never the terminal: a passphrase stack reads PULUMI_CONFIG_PASSPHRASE(_FILE) instead.
    result = subprocess.run(command, input=stdin or "", capture_output=True, text=True)
    if result.returncode != 0:
        # pulumi's own message; it never echoes a value given on stdin
        sys.exit(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
    return result.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="the stack (default: the selected one)")
    stack = parser.parse_args(argv).stack
    initial = json.loads(_pulumi(["stack", "output", "initialPasswords", "--json",
                                  "--show-secrets"], stack) or "{}")
    users = json.loads(_pulumi(["config", "get", "users"], stack)) if initial else []
    keep = passwords_to_keep(users, initial)
    for name, path, password in keep:
        # The value on stdin ("Multi-line values may be set by piping a file to standard in")
        # and --type string (a --path value that looks like a number would become one):
        # https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/
        _pulumi(["config", "set", "--secret", "--path", "--type", "string", path], stack,
                stdin=password)
        print(f"kept {name}'s password ({path}, encrypted)")
    print(f"{len(keep)} password(s) kept in config; now run `pulumi up`.")


if __name__ == "__main__":
    main()
