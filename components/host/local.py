"""The local Docker engine as the host: no VM, the data directory is a folder on this machine."""

from __future__ import annotations

import shlex

import pulumi
import pulumi_command as command

from components.config import BackupSettings, HostSettings
from components.host import BackupTarget, Host, Publishing


class LocalHost(Host):
    def __init__(self, name: str, args: HostSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:host:LocalHost", name, None, opts)
        assert args.local is not None
        local = args.local
        # Fails the deploy early, with Docker's own message, when the engine is not reachable.
        check = command.local.Command(
            f"{name}-ready",
            create=f"mkdir -p {shlex.quote(local.data_dir)} && docker version --format "
                   "'{{.Server.Version}}'",
            environment={"DOCKER_HOST": local.docker_host},
            opts=pulumi.ResourceOptions(parent=self))
        self.public_address = pulumi.Output.from_input("127.0.0.1")
        self.publishing = Publishing(pulumi.Output.from_input(local.site_name),
                                     bind_ip=local.bind_address, http_port=local.http_port,
                                     https_port=local.https_port)
        self.ssh_user = None
        self.data_dir = local.data_dir
        self.data_volume_id = pulumi.Output.from_input(local.data_dir)
        self.ready = check.stdout
        self.docker_host = check.stdout.apply(lambda _: local.docker_host)
        self.ssh_opts = None
        self.engine_identity = pulumi.Output.from_input(f"local:{local.docker_host}")
        self._register()

    def _default_backup_target(self, name: str, backup: BackupSettings,
                               host: HostSettings) -> BackupTarget:
        """A sibling of the data directory: deleting the data directory keeps the backups."""
        directory = f"{self.data_dir.rstrip('/')}-backups"
        return BackupTarget(directory, None, directory)
