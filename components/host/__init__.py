"""What every host target hands to the service layer, and the SSH policy they share.

OpenStackHost, AwsHost and LocalHost subclass `Host`, so the rest of the program never asks which
cloud it runs on.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components.config import BackupSettings, HostSettings
from components.host.bootstrap import BootstrapParams, render_user_data

# The host-ready step runs this script on the machine running pulumi (it uses the local ssh, the
# same way the Docker provider does, so one host-key policy covers both).
WAIT_SCRIPT = "scripts/wait-host-ready.sh"


def ssh_options(host: HostSettings) -> list[str]:
    """Trust-on-first-use host keys, pinned in a per-stack known_hosts file; never interactive."""
    opts = ["-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={host.known_hosts_file}",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=30"]
    if host.ssh_private_key_path:
        opts += ["-i", host.ssh_private_key_path, "-o", "IdentitiesOnly=yes"]
    return opts


@dataclass(frozen=True)
class Publishing:
    """How people reach the platform: the host decides, so the platform never asks about clouds."""

    address: pulumi.Output[str]  # the name or address people open (the certificate's site)
    bind_ip: str                 # where Caddy's ports are published; "" for every interface
    http_port: int
    https_port: int


@dataclass(frozen=True)
class BackupTarget:
    """Where the platform's backups go, handed over by the host so that the service layer never
    asks which cloud it is on (nor imports a cloud SDK)."""

    repository: pulumi.Input[str]                   # a restic repository (path or URL)
    env: pulumi.Input[dict[str, str]] | None = None  # secret credentials restic reads from env
    host_dir: str | None = None                      # a directory repository on the host


class Host(pulumi.ComponentResource):
    """A Docker host with its data directory on the data volume.

    `ready` resolves only after the host is usable (cloud-init finished, or the local engine answered);
    everything that talks to Docker must depend on it.
    """

    public_address: pulumi.Output[str]
    ssh_user: str | None
    docker_host: pulumi.Output[str]
    data_dir: str
    data_volume_id: pulumi.Output[str]
    ready: pulumi.Output[str]
    publishing: Publishing

    def _wait_until_ready(self, name: str, host: HostSettings, public_address: pulumi.Output[str],
                          server_id: pulumi.Output[str],
                          depends_on: list[pulumi.Resource]) -> None:
        """Declares the host-ready step for a cloud host and sets the shared outputs."""
        target = public_address.apply(lambda ip: f"{host.ssh_user}@{ip}")
        waiter = command.local.Command(
            f"{name}-ready",
            create=f"bash {WAIT_SCRIPT}",
            environment={"JHC_SSH_TARGET": target, "JHC_SSH_OPTS": " ".join(ssh_options(host)),
                         "JHC_KNOWN_HOSTS": host.known_hosts_file},
            triggers=[server_id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))
        self.public_address = public_address
        self.publishing = Publishing(public_address, bind_ip="", http_port=80, https_port=443)
        self.ssh_user = host.ssh_user
        self.data_dir = host.data_dir
        # Using the waiter's stdout makes every consumer of docker_host wait for the host.
        self.ready = waiter.stdout
        self.docker_host = pulumi.Output.all(waiter.stdout, target).apply(
            lambda parts: f"ssh://{parts[1]}")

    def backup_target(self, name: str, backup: BackupSettings,
                      host: HostSettings) -> BackupTarget:
        """The configured repository, or this host's default (a cloud's object storage)."""
        if backup.repository:
            local = backup.repository if backup.repository.startswith("/") else None
            return BackupTarget(backup.repository, backup.repository_env, local)
        return self._default_backup_target(name, backup, host)

    def _default_backup_target(self, name: str, backup: BackupSettings,
                               host: HostSettings) -> BackupTarget:
        raise NotImplementedError

    def docker_provider(self, name: str, host: HostSettings) -> docker.Provider:
        """The engine the service layer deploys to; configured only once the host is ready."""
        return docker.Provider(
            name, host=self.docker_host,
            ssh_opts=ssh_options(host) if host.cloud != "local" else None)

    def _register(self) -> None:
        self.register_outputs({
            "public_address": self.public_address, "docker_host": self.docker_host,
            "data_volume_id": self.data_volume_id, "ready": self.ready})


def user_data(host: HostSettings, candidates: tuple[str, ...]) -> str:
    """Renders the host bootstrap from host-level settings only (called inside an apply)."""
    return render_user_data(BootstrapParams(
        admin_user=host.ssh_user, data_dir=host.data_dir, data_device_candidates=candidates,
        bytes_per_inode=host.bytes_per_inode, nofile_limit=host.nofile_limit,
        nproc_limit=host.nproc_limit, docker_log_max_size=host.docker_log_max_size,
        docker_log_max_files=host.docker_log_max_files, prune_schedule=host.prune_schedule,
        prune_until=host.prune_until))


def keep_data(host: HostSettings, parent: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options for the data volume and the public IP: protected and kept on destroy by default."""
    keep = not host.allow_data_loss
    return pulumi.ResourceOptions(parent=parent, protect=keep, retain_on_delete=keep)


def host_class(cloud: str) -> type[Host]:
    """Imports only the chosen cloud's SDK: pulumi_aws alone costs about a second per run."""
    module, name = {"openstack": ("components.host.openstack", "OpenStackHost"),
                    "aws": ("components.host.aws", "AwsHost"),
                    "local": ("components.host.local", "LocalHost")}[cloud]
    return getattr(importlib.import_module(module), name)
