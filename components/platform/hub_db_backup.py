"""The hub database's dump before a JupyterHub version change may upgrade its schema.

A one-shot container of the project's Postgres image (so pg_dump has the server's major version)
runs services/postgres/hub-db-dump.sh. Its inputs name the hub's JupyterHub version, so Pulumi
re-creates it, and so dumps again, exactly when that version changes; the hub depends on it and
its `gate` fails the deploy before the hub is touched when the dump failed. The hub itself then
upgrades the schema at start (`JupyterHub.upgrade_db`, services/hub/jhc_hub.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.platform.containers import LABELS, Networks, attach, bind, secret_file
from components.platform.endpoints import POSTGRES
from components.platform.postgres import DB
from images.catalog import jupyterhub_version_in_requirements

HUB_REQUIREMENTS = Path(__file__).resolve().parents[2] / "services" / "hub" / "requirements.txt"
BACKUPS_IN_CONTAINER = "/backups"


def hub_jupyterhub_version() -> str:
    """The JupyterHub version the hub image installs (its requirements pin)."""
    version = jupyterhub_version_in_requirements(HUB_REQUIREMENTS)
    if not version:
        raise ValueError(f"{HUB_REQUIREMENTS} pins no jupyterhub version")
    return version


@dataclass(frozen=True)
class HubDbBackupArgs:
    prefix: str
    data_dir: str
    networks: Networks
    image: pulumi.Output[str]      # the Postgres image's local id
    db_password: pulumi.Output[str]
    postgres: docker.Container     # dumps only once the server is healthy
    hub_version: str


def _check_dump(result: list) -> str:
    exit_code, logs = result
    if exit_code not in (0, None):
        raise pulumi.RunError(
            f"The hub database dump before the JupyterHub upgrade failed (exit {exit_code}); "
            f"the hub was not changed. Fix the cause, then run the dump again with "
            f"`pulumi up --replace \"$(pulumi stack --show-urns | grep -o "
            f"'urn:[^ ]*hub-db-backup-dump')\"`. Its output:\n{logs or '(no output)'}")
    return "dumped"


class HubDbBackup(pulumi.ComponentResource):
    gate: pulumi.Output[str]  # resolves after a successful dump; raises otherwise

    def __init__(self, name: str, args: HubDbBackupArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:HubDbBackup", name, None, opts)
        self.container = docker.Container(
            f"{name}-dump", name=f"{args.prefix}-hub-db-dump", image=args.image,
            command=["/usr/local/lib/jhc-postgres/hub-db-dump.sh"],
            envs=[f"PGHOST={POSTGRES.host}", f"PGPORT={POSTGRES.port}", f"PGUSER={DB}",
                  f"PGDATABASE={DB}",
                  "JHC_DB_PASSWORD_FILE=/run/secrets/db-password",
                  f"JHC_BACKUP_DIR={BACKUPS_IN_CONTAINER}",
                  # a new version is a new container: the dump runs again, before the hub
                  f"JHC_HUB_VERSION={args.hub_version}"],
            uploads=[secret_file("db-password", args.db_password)],
            volumes=[bind(f"{args.data_dir}/state/hub-db-backups", BACKUPS_IN_CONTAINER)],
            networks_advanced=[attach(args.networks.backend, "hub-db-dump")],
            attach=True, logs=True, must_run=False, restart="no", labels=LABELS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.postgres]))
        self.gate = pulumi.Output.all(self.container.exit_code,
                                      self.container.container_logs).apply(_check_dump)
        self.register_outputs({})
