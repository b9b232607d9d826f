"""Nightly backups: the restic container (services/backup) and its generated repository password.

The container dumps PostgreSQL and LDAP first, then backs up homes, shared data, Caddy's ACME
state and the hub's keys (services/backup/jhc-backup). Where to: a BackupTarget the host hands
over. Nothing here touches the host: backup settings never reach the VM or its volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config import BackupSettings
from components.host import BackupTarget
from components.platform.containers import LABELS, SECRETS_DIR, Networks, attach, bind, build
from components.platform.endpoints import POSTGRES
from components.platform.versions import POSTGRES_IMAGE

CONTEXT = "services/backup"
ENV_DIR = f"{SECRETS_DIR}/backup-env"
STATE_IN_CONTAINER = "/data"
LDAP_CONFIG = "/etc/ldap/slapd.d"


@dataclass(frozen=True)
class BackupArgs:
    prefix: str
    stack: str
    data_dir: str
    networks: Networks
    settings: BackupSettings
    target: BackupTarget
    keep: bool        # protect and retain the repository password (like the data)
    with_ldap: bool   # dump and restore the directory (only when LDAP logins deploy one)
    platform: str     # the host's, e.g. linux/arm64
    postgres_password: pulumi.Output[str]
    cookie_secret: pulumi.Output[str]
    crypt_key: pulumi.Output[str]
    depends_on: list[pulumi.Resource]


def backup_environment(settings: BackupSettings, stack: str, repository: str,
                       with_ldap: bool = True) -> dict[str, str]:
    """The container's plain environment (jhc-backup's variables); no secret among them."""
    return {
        "RESTIC_REPOSITORY": repository,
        "RESTIC_PASSWORD_FILE": f"{SECRETS_DIR}/restic-password",
        "JHC_BACKUP_ENV_DIR": ENV_DIR,
        "JHC_BACKUP_HOST": f"jupyterhub-cloud-{stack}",
        "JHC_DATA_DIR": STATE_IN_CONTAINER,
        "JHC_PG_HOST": POSTGRES.host,
        "JHC_PG_PORT": str(POSTGRES.port),
        "JHC_PG_PASSWORD_FILE": f"{SECRETS_DIR}/postgres-password",
        "JHC_LDAP_CONFIG_DIR": LDAP_CONFIG if with_ldap else "",
        "JHC_HUB_KEY_FILES": f"{SECRETS_DIR}/cookie-secret:{SECRETS_DIR}/crypt-key",
        "JHC_BACKUP_TIME": settings.time,
        "JHC_BACKUP_KEEP_DAILY": str(settings.keep_daily),
        "JHC_BACKUP_KEEP_WEEKLY": str(settings.keep_weekly),
        "JHC_BACKUP_KEEP_MONTHLY": str(settings.keep_monthly),
        "JHC_BACKUP_CHECK_DAYS": str(settings.check_every_days),
        "JHC_BACKUP_CHECK_SUBSET": f"{settings.check_read_data_percent}%",
    }


def secret_uploads(files: dict[str, str], env: dict[str, str]) -> list[docker.ContainerUploadArgs]:
    """Mode-600 files: the secrets by name, and each credential as backup-env/<NAME>, which
    jhc-backup exports for restic only (so they are never in `docker inspect`)."""
    uploads = {**{f"{SECRETS_DIR}/{k}": v for k, v in files.items()},
               **{f"{ENV_DIR}/{k}": v for k, v in env.items()}}
    return [docker.ContainerUploadArgs(file=path, content=content, owner="0", group="0",
                                       permissions="0600")
            for path, content in sorted(uploads.items())]


class Backup(pulumi.ComponentResource):
    repository: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, args: BackupArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:Backup", name, None, opts)
        keep = args.keep
        # Without it no backup can be read: kept like the data (components.host.keep_data),
        # never regenerated (no keepers).
        self.password = random.RandomPassword(
            f"{name}-restic-password", length=48, special=False,
            opts=pulumi.ResourceOptions(parent=self, protect=keep, retain_on_delete=keep)).result
        image = build(f"{name}-image", CONTEXT, f"{args.prefix}-backup:latest", self,
                      args.platform, args={"POSTGRES_IMAGE": POSTGRES_IMAGE})
        self.repository = pulumi.Output.from_input(args.target.repository)
        envs = self.repository.apply(lambda repo: [
            f"{k}={v}" for k, v in
            backup_environment(args.settings, args.stack, repo, args.with_ldap).items()])
        credentials = pulumi.Output.from_input(args.target.env or {})
        uploads = pulumi.Output.secret(pulumi.Output.all(
            self.password, args.postgres_password, args.cookie_secret, args.crypt_key,
            credentials).apply(lambda v: secret_uploads(
                {"restic-password": v[0], "postgres-password": v[1], "cookie-secret": v[2],
                 "crypt-key": v[3]}, dict(v[4]))))
        data = args.data_dir
        volumes = [bind(data, STATE_IN_CONTAINER)]
        if args.with_ldap:
            # the paths slapd's cn=config names, so slapcat/slapadd find the database
            volumes += [bind(f"{data}/state/ldap/config", LDAP_CONFIG),
                        bind(f"{data}/state/ldap/data", "/var/lib/ldap")]
        if args.target.host_dir:
            volumes.append(bind(args.target.host_dir, args.target.host_dir))
        self.container = docker.Container(
            f"{name}-container", name=f"{args.prefix}-backup", image=image.repo_digest,
            restart="unless-stopped", labels=LABELS, envs=envs, uploads=uploads,
            volumes=volumes,
            # backend: PostgreSQL; frontend: the way out to object storage (listens on nothing)
            networks_advanced=[attach(args.networks.backend, "backup"),
                               attach(args.networks.frontend, "backup")],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "jhc-backup", "health"], interval="5m", timeout="1m",
                start_period="2m", retries=1),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        self.register_outputs({"repository": self.repository})
