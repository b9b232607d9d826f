"""What every host target hands to the service layer, and the SSH policy they share.

OpenStackHost, AwsHost and LocalHost subclass `Host`, so the rest of the program never asks which
cloud it runs on.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import pulumi_random as random

from components.config import BackupSettings, HostSettings
from components.host.bootstrap import BootstrapParams, render_user_data
from components.host.security import REGISTRY_PORT  # noqa: F401  the platform publishes its registry there

# The host-ready step runs this script on the machine running pulumi (it uses the local ssh, the
# same way the Docker provider does, so one host-key policy covers both). Its delete runs
# RETIRE_SCRIPT: services stopped and the data filesystem unmounted before the volume is detached.
WAIT_SCRIPT = "scripts/wait-host-ready.sh"
RETIRE_SCRIPT = "scripts/retire-host.sh"


def known_hosts_for(host: HostSettings, server_id: str) -> str:
    """The pinned known_hosts file of one server: a new server (new id) starts an empty file, so
    accept-new takes its key, while a changed key of the same server is still refused."""
    return f"{host.known_hosts_file}.d/{re.sub(r'[^A-Za-z0-9._-]', '_', server_id)}"


def ssh_options(host: HostSettings, known_hosts: pulumi.Input[str] | None = None
                ) -> list[pulumi.Input[str]]:
    """Trust-on-first-use host keys pinned per server; never interactive; one multiplexed
    connection for the many parallel Docker operations (sshd's MaxStartups drops the excess)."""
    path = pulumi.Output.from_input(known_hosts or host.known_hosts_file)
    pinned = path.apply(lambda p: f"UserKnownHostsFile={p}")
    # One master connection per server (not per address): a rolled host on the same IP never
    # reuses a connection to its predecessor.
    control = path.apply(
        lambda p: f"ControlPath=~/.ssh/jhc-{hashlib.sha256(p.encode()).hexdigest()[:12]}-%C")
    opts: list[pulumi.Input[str]] = [
        "-o", "StrictHostKeyChecking=accept-new", "-o", pinned, "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=30",
        "-o", "ControlMaster=auto", "-o", control, "-o", "ControlPersist=60s"]
    if host.ssh_private_key_path:
        # Only this key: an agent holding more keys than sshd's MaxAuthTries (6) fails otherwise.
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


@dataclass(frozen=True)
class Cluster:
    """Worker VMs joined to a Docker Swarm whose manager is the main host (hostWorkers > 0).

    Handed to the platform like Publishing: the platform switches to SwarmSpawner, an overlay
    network and the manager's registry without asking which cloud the nodes are on.
    """

    manager_address: pulumi.Output[str]  # the main host's private address: registry and NFS
    worker_count: int
    ready: pulumi.Output[str]            # resolves once every worker has joined the swarm


class Host(pulumi.ComponentResource):
    """A Docker host with its data directory on the data volume.

    `ready` resolves only after the host is usable (cloud-init finished, or the local engine answered);
    everything that talks to Docker must depend on it.
    """

    public_address: pulumi.Output[str]
    ssh_user: str | None
    docker_host: pulumi.Output[str]
    ssh_opts: list[pulumi.Input[str]] | None
    engine_identity: pulumi.Output[str]
    data_dir: str
    data_volume_id: pulumi.Output[str]
    ready: pulumi.Output[str]
    publishing: Publishing
    cluster: Cluster | None = None  # None: one host, DockerSpawner (today's deployment)
    worker_addresses: pulumi.Output[list[str]] | None = None  # private, reached via ssh -J

    def _wait_until_ready(self, name: str, host: HostSettings, public_address: pulumi.Output[str],
                          server_id: pulumi.Output[str],
                          depends_on: list[pulumi.Resource]) -> None:
        """Declares the host-ready step for a cloud host and sets the shared outputs.

        The step depends on the volume attachment, so Pulumi deletes it first (dependents before
        dependencies): its delete stops Docker and unmounts the data volume before the detach.
        It is replaced with the server (triggers), so a roll runs retire, then wait, again.
        """
        target = public_address.apply(lambda ip: f"{host.ssh_user}@{ip}")
        known_hosts = server_id.apply(lambda sid: known_hosts_for(host, sid))
        opts = ssh_options(host, known_hosts)
        waiter = command.local.Command(
            f"{name}-ready",
            create=f"bash {WAIT_SCRIPT}",
            delete=f"bash {RETIRE_SCRIPT}",
            environment={"JHC_SSH_TARGET": target, "JHC_SSH_OPTS": pulumi.Output.all(*opts).apply(
                " ".join), "JHC_KNOWN_HOSTS": known_hosts, "JHC_DATA_DIR": host.data_dir},
            triggers=[server_id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on,
                                        delete_before_replace=True))
        self.public_address = public_address
        self.publishing = Publishing(public_address, bind_ip="", http_port=80, https_port=443)
        self.ssh_user = host.ssh_user
        self.data_dir = host.data_dir
        self.ssh_opts = opts
        # Using the waiter's stdout makes every consumer of docker_host wait for the host.
        self.ready = waiter.stdout
        self.docker_host = pulumi.Output.all(waiter.stdout, target).apply(
            lambda parts: f"ssh://{parts[1]}")
        # The engine is its address and its /var/lib/docker, which lives on the data volume: a
        # rolled host on the same volume and IP is the same engine, another volume is not.
        self.engine_identity = pulumi.Output.all(target, self.data_volume_id).apply(
            lambda v: f"{host.cloud}:ssh://{v[0]}#{v[1]}")

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
        return docker.Provider(name, host=self.docker_host, ssh_opts=self.ssh_opts)

    def _register(self) -> None:
        self.register_outputs({
            "public_address": self.public_address, "docker_host": self.docker_host,
            "data_volume_id": self.data_volume_id, "ready": self.ready})


def pinned_server_inputs(name: str, host: HostSettings, values: dict[str, pulumi.Input[str]],
                         parent: pulumi.Resource) -> dict[str, pulumi.Output[str]] | None:
    """The image and bootstrap of the current host generation, or None for generation 0.

    ignoreChanges cannot roll a host: on a replacement the engine still takes the ignored
    properties from the old state (pulumi/pulumi#2657; pulumi docs "ignoreChanges": "uses the
    serialized value from the stack state for any later previews or updates"). So from
    generation 1 on the values are kept in a latch named after the generation: a new generation
    is a new resource, created with the current image and user_data; within a generation the
    latch ignores its own changes, so a newer image or template never touches a running host.
    Generation 0 keeps the first deployment's behaviour (ignore_changes on the server).
    """
    if host.host_generation == 0:
        return None
    latch = random.RandomId(
        f"{name}-pin-g{host.host_generation}", byte_length=4, keepers=values,
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["keepers"]))
    return {key: latch.keepers.apply(lambda k, key=key: k[key]) for key in values}


def roll_options(pinned: dict | None, legacy_ignored: list[str]) -> dict:
    """Server options: delete before replace (the volume and, on OpenStack, the port can belong
    to one server at a time), and ignore_changes only in generation 0."""
    options: dict = {"delete_before_replace": True}
    if pinned is None:
        options["ignore_changes"] = legacy_ignored
    return options


def user_data(host: HostSettings, candidates: tuple[str, ...]) -> str:
    """Renders the host bootstrap from host-level settings only (called inside an apply)."""
    text = render_user_data(BootstrapParams(
        admin_user=host.ssh_user, data_dir=host.data_dir, data_device_candidates=candidates,
        bytes_per_inode=host.bytes_per_inode, nofile_limit=host.nofile_limit,
        nproc_limit=host.nproc_limit, docker_log_max_size=host.docker_log_max_size,
        docker_log_max_files=host.docker_log_max_files, prune_schedule=host.prune_schedule,
        prune_until=host.prune_until))
    if host.host_generation:
        # A new generation always changes user_data, which replaces the server on both clouds.
        text += f"# jupyterhub-cloud host generation {host.host_generation}\n"
    return text


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
