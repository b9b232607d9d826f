"""Records what the program declares for each example stack: every resource's name, type, inputs
and recorded options, as JSON under tests/snapshots/.

Why: `hostWorkers: 0` (and unset) must keep the single-host deployment byte for byte. A snapshot
taken from the program before the workers existed lets tests/test_workers_zero.py compare the
whole graph against it, not only against another run of the same (possibly changed) code.
Regenerate only for a deliberate change of the declared graph, and review the diff:
`venv/bin/python scripts/record_resource_graph.py`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "snapshots"
STACKS = ("dev", "aws", "local")
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _normalise(value: Any) -> Any:
    """The checkout's path and the home directory (the local stack's default data directory)
    differ between machines and worktrees: replace them."""
    text = json.dumps(value, sort_keys=True, default=str).replace(str(ROOT), "<ROOT>")
    home = os.path.expanduser("~")
    if home != "/":
        text = text.replace(f"{home}/", "<HOME>/")
    return json.loads(text)


def _options(opts: Any) -> dict[str, Any]:
    if opts is None:
        return {}
    return {
        "protect": opts.protect, "retain_on_delete": opts.retain_on_delete,
        "ignore_changes": opts.ignore_changes, "delete_before_replace": opts.delete_before_replace,
        "replace_on_changes": opts.replace_on_changes,
        "parent": getattr(opts.parent, "_name", None),
        "depends_on": sorted(d._name for d in (opts.depends_on or [])),
    }


def graph(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """name → {type, custom, inputs, options} of one mock run of __main__.py."""
    from harness import run_program
    run = run_program(stack, overrides=overrides)
    return _normalise({r.name: {"type": r.type, "custom": r.custom, "inputs": r.plain,
                                "options": _options(r.opts)} for r in run})


def main() -> None:
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    for stack in STACKS:
        path = SNAPSHOTS / f"resource-graph-{stack}.json"
        path.write_text(json.dumps(graph(stack), indent=1, sort_keys=True) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(json.loads(path.read_text()))} resources")


if __name__ == "__main__":
    main()
