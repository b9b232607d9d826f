"""PostgreSQL for the hub's state: internal network only, data on the volume.

The image is built FROM the pinned official one (services/postgres/Dockerfile): on every start of
an existing cluster its entrypoint sets the role's password from the uploaded file and refuses a
data directory of another major version, then runs the official entrypoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.containers import LABELS, Networks, attach, bind, build, secret_file
from components.platform.endpoints import POSTGRES
from components.platform.versions import POSTGRES_IMAGE

DB = "jupyterhub"
POSTGRES_UID = "999"  # the postgres user of the official image reads its password file
CONTEXT = "services/postgres"


@dataclass(frozen=True)
class PostgresArgs:
    prefix: str
    data_dir: str
    networks: Networks
    password: pulumi.Output[str]
    platform: str  # the host's, e.g. linux/arm64


class Postgres(pulumi.ComponentResource):

    def __init__(self, name: str, args: PostgresArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Postgres", name, None, opts)
        # POSTGRES_IMAGE is the FROM of the build: a new major is a new image, and its
        # entrypoint then refuses the old cluster (a dump/restore, docs/admin-guide.md).
        self.image = image = build(f"{name}-image", CONTEXT, f"{args.prefix}-postgres:latest",
                                   self, args.platform, args={"POSTGRES_IMAGE": POSTGRES_IMAGE})
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-postgres", image=image.repo_digest,
            restart="unless-stopped", labels=LABELS,
            envs=[f"POSTGRES_USER={DB}", f"POSTGRES_DB={DB}",
                  "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password",
                  # Network logins with scram-sha-256; the password is set from the file at
                  # initdb (official entrypoint) and at every later start (ours). The local
                  # socket stays "trust" inside the container for the image's init.
                  "POSTGRES_HOST_AUTH_METHOD=scram-sha-256"],
            uploads=[secret_file("postgres-password", args.password, owner=POSTGRES_UID)],
            volumes=[bind(f"{args.data_dir}/state/postgres", "/var/lib/postgresql/data")],
            networks_advanced=[attach(args.networks.backend, POSTGRES.host)],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", f"pg_isready -U {DB} -d {DB} -h 127.0.0.1"],
                interval="10s", timeout="5s", retries=5, start_period="30s"),
            wait=True, wait_timeout=180,
            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
