"""Both ends of the NFSv4 share that gives swarm workers the main host's user data.

User servers bind-mount the same host paths on every node (<data dir>/homes/<user>, shared,
datasets), so the workers mount exactly these directories of the main host at the same paths.
Only these three are exported: Postgres, LDAP, the hub's state and Docker's own directory stay
on the main host. Pure renderers, so tests read what the manager and the workers get.
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

import jinja2

from components.host.bootstrap import _environment

# (directory under the data dir, mount mode): datasets are read-only on every worker.
EXPORTS: tuple[tuple[str, str], ...] = (("homes", "rw"), ("shared", "rw"), ("datasets", "ro"))
EXPORTS_FILE = "/etc/exports.d/jupyterhub-cloud.exports"
TEMPLATES_DIR = str(Path(__file__).resolve().parents[2] / "scripts" / "templates")


def _check(data_dir: str, addresses: list[str]) -> None:
    if not data_dir.startswith("/") or " " in data_dir:
        raise ValueError(f"data dir must be an absolute path without spaces, got {data_dir!r}")
    for address in addresses:
        ipaddress.ip_address(address)  # a host name or a network here would widen the export


@functools.cache
def _scripts_environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render_exports(data_dir: str, clients: list[str]) -> str:
    """/etc/exports.d content: each directory to each worker address, nothing else."""
    if not clients:
        raise ValueError("an export needs at least one client")
    _check(data_dir, clients)
    return _scripts_environment().get_template("nfs-exports.j2").render(
        data_dir=data_dir, clients=sorted(set(clients), key=ipaddress.ip_address),
        exports=EXPORTS)


def render_worker_fstab(data_dir: str, manager_address: str) -> str:
    """The workers' fstab lines (installed by jhc-worker-setup)."""
    _check(data_dir, [manager_address])
    return _environment().get_template("worker-nfs.fstab.j2").render(
        data_dir=data_dir, manager_address=manager_address, exports=EXPORTS)
