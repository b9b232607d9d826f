"""PostgreSQL for the hub's state: the official image, internal network only, data on the volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.containers import LABELS, Networks, attach, bind, secret_file
from components.platform.endpoints import POSTGRES
from components.platform.versions import POSTGRES_IMAGE

DB = "jupyterhub"
POSTGRES_UID = "999"  # the postgres user of the official image reads its password file


@dataclass(frozen=True)
class PostgresArgs:
    prefix: str
    data_dir: str
    networks: Networks
    password: pulumi.Output[str]


class Postgres(pulumi.ComponentResource):

    def __init__(self, name: str, args: PostgresArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Postgres", name, None, opts)
        image = docker.RemoteImage(f"{name}-image", name=POSTGRES_IMAGE, keep_locally=True,
                                   opts=pulumi.ResourceOptions(parent=self))
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-postgres", image=image.image_id,
            restart="unless-stopped", labels=LABELS,
            envs=[f"POSTGRES_USER={DB}", f"POSTGRES_DB={DB}",
                  "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password",
                  # Network logins with scram-sha-256 (the password is read only at initdb);
                  # the local socket stays "trust" inside the container for the image's init.
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
