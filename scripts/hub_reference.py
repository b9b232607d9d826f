"""Writes docs/hub.md's table of the hub's JHC_* variables from services/hub/jhc_variables.py.

Run after editing that table: `venv/bin/python scripts/hub_reference.py`. A test fails when the
docs are out of date (as scripts/config_reference.py does for Pulumi.yaml and the README).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "hub.md"
sys.path.insert(0, str(ROOT / "services" / "hub"))

from jhc_variables import VARIABLES  # noqa: E402

BEGIN, END = "<!-- hub-variables:begin -->", "<!-- hub-variables:end -->"


def table() -> str:
    rows = ["| variable | meaning | default | required | stack config key |",
            "|---|---|---|---|---|"]
    for var in VARIABLES:
        default = f"`{var.default}`" if var.default else ""
        key = f"`{var.config_key}`" if var.config_key else ""
        rows.append(f"| `{var.name}` | {var.meaning} | {default} | {var.required} | {key} |")
    return "\n".join([BEGIN, *rows, END])


def render(current: str) -> str:
    start, end = current.index(BEGIN), current.index(END) + len(END)
    return current[:start] + table() + current[end:]


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    print(f"wrote {DOC}")
