"""The typed, frozen settings the loader produces: what the host and the platform are given."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pulumi

from components.config.accounts import Group, User

PROJECT = "jupyterhub-cloud"
CLOUDS = ("openstack", "aws", "local")
DATA_DIR = "/srv/jupyterhub"
IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
DEFAULT_IMAGES = (
    {"name": "minimal", "displayName": "Python (minimal)", "path": "minimal"},
    {"name": "scipy", "displayName": "Scientific Python", "path": "scipy"},
    {"name": "r", "displayName": "R", "path": "r"},
)


class ConfigError(pulumi.RunError):
    """A stack config value is wrong; pulumi prints the message without a traceback."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        super().__init__(f"config key '{PROJECT}:{key}': {problem}. {fix}")


class StackNameError(pulumi.RunError):
    """The stack name becomes part of every Docker name, and Docker names are lower case."""

    def __init__(self, stack: str) -> None:
        super().__init__(
            f"stack name {stack!r}: Docker container, network and image names are derived from "
            f"it and must be lower case. Create the stack as `pulumi stack init "
            f"{re.sub(r'[^a-z0-9_.-]', '-', stack.lower()).lstrip('_.-') or 'dev'}` and copy "
            "its config there (`pulumi config cp`)")


@dataclass(frozen=True)
class OpenStackSettings:
    image: str
    flavor: str
    network: str
    floating_ip_pool: str
    volume_type: str | None
    availability_zone: str | None


@dataclass(frozen=True)
class AwsSettings:
    instance_type: str
    ami: str | None
    vpc_id: str | None
    subnet_id: str | None
    root_volume_size_gb: int
    data_volume_type: str
    data_volume_iops: int | None = None


@dataclass(frozen=True)
class LocalSettings:
    data_dir: str
    docker_host: str
    https_port: int
    http_port: int
    bind_address: str  # where Caddy's ports are published
    site_name: str     # the name or address people open; the certificate is issued for it


@dataclass(frozen=True)
class DataSnapshots:
    """aws: daily EBS snapshots of the data volume by the Data Lifecycle Manager."""

    keep: int  # 0: no policy
    time: str  # HH:MM UTC


@dataclass(frozen=True)
class WorkerSettings:
    """Worker VMs joined to the main host's swarm (only present when hostWorkers > 0, so a
    single-host stack's settings, and everything derived from them, stay as they were)."""

    count: int
    size: str                      # OpenStack flavor or EC2 instance type
    root_volume_size_gb: int = 50  # aws: the workers' root disk (Docker's images)
    public_ip: bool = False        # aws: outbound through a public IPv4 (no NAT gateway)
    join_token_generation: int = 0  # raised: the manager rotates the worker join token


@dataclass(frozen=True)
class HostSettings:
    cloud: str
    ssh_user: str
    ssh_public_key: str | None
    ssh_private_key_path: str | None
    known_hosts_file: str
    admin_cidrs: tuple[str, ...]
    existing_data_volume_id: str | None
    data_volume_size_gb: int
    bytes_per_inode: int
    allow_data_loss: bool
    nofile_limit: int
    nproc_limit: int
    docker_log_max_size: str
    docker_log_max_files: int
    prune_schedule: str
    prune_until: str
    host_generation: int = 0
    architecture: str = "amd64"  # the host's CPU: images are built for it, never the operator's
    openstack: OpenStackSettings | None = None
    aws: AwsSettings | None = None
    snapshots: DataSnapshots | None = None
    local: LocalSettings | None = None
    workers: WorkerSettings | None = None  # None: one host (hostWorkers 0)

    @property
    def data_dir(self) -> str:
        return self.local.data_dir if self.local else DATA_DIR

    @property
    def platform(self) -> str:
        """Docker build platform of every image: pulumi-docker would otherwise default to the
        GOOS/GOARCH of the machine running pulumi (pulumi-docker DockerBuild.platform docs)."""
        return f"linux/{self.architecture}"


@dataclass(frozen=True)
class NotebookImage:
    name: str
    display_name: str
    path: str  # directory under images/
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str


@dataclass(frozen=True)
class GithubSettings:
    client_id: str
    client_secret: pulumi.Output[str]
    allowed_orgs: tuple[str, ...]


@dataclass(frozen=True)
class BackupSettings:
    """Nightly restic backups. repository None: the host's default target (see Host)."""

    enabled: bool
    repository: str | None
    repository_env: pulumi.Output[dict[str, str]] | None
    time: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    check_every_days: int
    check_read_data_percent: int


@dataclass(frozen=True)
class ServiceSettings:
    domain: str | None
    acme_email: str | None
    acme_staging: bool
    auth: str
    ldap_base_dn: str
    ldap_organisation: str
    users: tuple[User, ...]
    groups: tuple[Group, ...]
    admin_users: tuple[str, ...]
    allowed_users: tuple[str, ...]
    allowed_groups: tuple[str, ...]
    blocked_users: tuple[str, ...]
    images: tuple[NotebookImage, ...]
    datasets: tuple[Dataset, ...]
    mem_limit: str  # jhc_values.memory_bytes accepts it; passed to the hub as written
    cpu_limit: str  # jhc_values.cpu_amount accepts it; passed to the hub as written
    cull_idle_timeout: int
    github: GithubSettings | None
    backup: BackupSettings
    # JupyterHub decrypts auth_state with every key and re-encrypts with the first
    previous_crypt_keys: pulumi.Output[str] | None = None

    @property
    def admins(self) -> tuple[str, ...]:
        return tuple(sorted({u.name for u in self.users if u.admin} | set(self.admin_users)))


@dataclass(frozen=True)
class Settings:
    stack: str
    host: HostSettings
    service: ServiceSettings
