"""Writes the config declarations of Pulumi.yaml and the README's config reference from one table.

Run after editing components/config/keys.py: `venv/bin/python scripts/config_reference.py`. The tests fail
when either file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.config.keys import KEYS  # noqa: E402

BEGIN, END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"


def pulumi_config() -> dict[str, dict]:
    """Pulumi.yaml can type scalars and arrays of strings only; "objects" keys are left out.

    `secret` is not declared there (Pulumi would then refuse the empty default); the loader
    refuses a secret key stored in plain text instead.
    """
    declared = {}
    for key in KEYS:
        if key.type == "objects":
            continue
        spec: dict = {"type": key.type, "description": key.description}
        if key.type == "array":
            spec["items"] = {"type": "string"}
        spec["default"] = key.default
        declared[key.name] = spec
    return declared


def pulumi_yaml(current: str) -> str:
    head = current[: current.index("config:")]
    return head + yaml.safe_dump({"config": pulumi_config()}, sort_keys=False, width=100)


def readme_table() -> str:
    rows = ["| key | layer | type | default | after deploy | meaning |",
            "|---|---|---|---|---|---|"]
    for key in KEYS:
        default = "" if key.default in ("", [], None) else f"`{json.dumps(key.default)}`"
        kind = key.type + (" (secret)" if key.secret else "")
        rows.append(f"| `{key.name}` | {key.layer} | {kind} | {default} | {key.after_deploy} | "
                    f"{key.description} |")
    return "\n".join([BEGIN, *rows, END])


def readme(current: str) -> str:
    start, end = current.index(BEGIN), current.index(END) + len(END)
    return current[:start] + readme_table() + current[end:]


if __name__ == "__main__":
    for name, render in (("Pulumi.yaml", pulumi_yaml), ("README.md", readme)):
        path = ROOT / name
        path.write_text(render(path.read_text()))
        print(f"wrote {path}")
