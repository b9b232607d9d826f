"""The hub's settings document and traitlets config of the example stacks, as plain JSON.

Why: Swarm mode must leave a single host's hub exactly as it was. tests/snapshots/
hub_docker_mode.json was recorded by this script from the main branch before Swarm mode existed
(run from a checkout: `cd <checkout> && venv/bin/python <this file> > snapshot.json`; the
checkout's harness and hub modules are imported), and test_swarm_platform.py compares the
current tree against it.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path.cwd()
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "services" / "hub")]

STACKS = ("local", "dev", "aws")


def _plain(value: Any) -> Any:
    """JSON-able form of a traitlets value: callables and classes by their qualified name."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, bytes):
        return value.hex()
    if inspect.isclass(value):
        return f"class {value.__qualname__} <- {[b.__qualname__ for b in value.__mro__[1:3]]}"
    if callable(value):
        return f"callable {getattr(value, '__qualname__', type(value).__qualname__)}"
    if isinstance(value, str):  # the checkout's own paths, the local stack's data under ~
        return value.replace(sys.executable, "<python>").replace(str(ROOT), "<repo>")
    return value


def hub_document(stack: str) -> dict[str, str]:
    from harness import container_env, run_program

    run = run_program(stack)
    [hub] = [r for r in run.of_type("docker:index/container:Container")
             if r.plain["name"].endswith("-hub")]
    return container_env(hub)


def hub_config(document: dict[str, str]) -> dict[str, Any]:
    """The traitlets the hub assigns from ``document`` (secret files replaced by fixed values)."""
    import jhc_hub
    from jhc_settings import read_settings
    from traitlets.config import Config

    settings = read_settings(document, read_files=False)
    db = settings.db and dataclasses.replace(settings.db, password="db-password")
    settings = dataclasses.replace(settings, files_read=True, crypt_keys=(b"k" * 32,),
                                   proxy_token="proxy-token", db=db)
    c = Config()
    jhc_hub.apply(c, settings)
    return {section: _plain(dict(values)) for section, values in sorted(c.items())}


def snapshot() -> dict[str, Any]:
    result = {}
    for stack in STACKS:
        document = hub_document(stack)
        # the image ids are hashes of the resource names under mocks: stable across branches
        result[stack] = {"document": document, "config": hub_config(document)}
    return json.loads(json.dumps(result).replace(f"{Path.home()}/", "<HOME>/"))


if __name__ == "__main__":
    json.dump(snapshot(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
