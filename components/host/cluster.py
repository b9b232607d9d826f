"""The cloud-neutral half of the swarm workers: the steps that run after the VMs boot.

The clouds (openstack_workers.py, aws_workers.py) create the worker VMs; this module declares,
on the machine running pulumi and over SSH like the host-ready step:
- `<name>-nfs`: the main host exports homes, shared and datasets to the workers' addresses;
- `<name>-swarm`: the main host's engine becomes the swarm's manager; its stdout, the worker join
  token, is a secret output and is not logged;
- per worker, `<name>-worker-<i>-ready` (cloud-init finished, through the main host as jump host)
  and `<name>-worker-<i>-join` (joins with the token on stdin; its delete drains the node).
Nothing here changes an input of the main host's resources.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.config import HostSettings
from components.host import WAIT_SCRIPT, Cluster, Host, known_hosts_for, ssh_options
from components.host.nfs import EXPORTS_FILE, render_exports
from components.host.security import REGISTRY_PORT


@dataclass(frozen=True)
class WorkerVm:
    """What a cloud hands over for one worker VM."""

    server: pulumi.Resource
    server_id: pulumi.Output[str]
    private_address: pulumi.Output[str]


def _joined(parts: list[pulumi.Input[str]]) -> pulumi.Output[str]:
    return pulumi.Output.all(*parts).apply(" ".join)


def join_workers(host: Host, name: str, settings: HostSettings,
                 manager_address: pulumi.Output[str], workers: list[WorkerVm]) -> Cluster:
    """Declares the NFS export, the swarm and each worker's join; returns what the platform gets.

    Every step reads the main host's `ready` (cloud-init finished there) through its inputs.
    """
    assert host.ssh_opts is not None and workers
    parent = pulumi.ResourceOptions(parent=host)
    manager = pulumi.Output.all(host.ready, host.public_address).apply(
        lambda v: f"{settings.ssh_user}@{v[1]}")
    manager_opts = _joined(host.ssh_opts)
    to_manager = {"JHC_MANAGER_TARGET": manager, "JHC_MANAGER_SSH_OPTS": manager_opts}

    addresses = pulumi.Output.all(*[w.private_address for w in workers])
    nfs = command.local.Command(
        f"{name}-nfs", create="bash scripts/nfs-export.sh", delete="bash scripts/nfs-unexport.sh",
        environment={**to_manager, "JHC_EXPORTS_FILE": EXPORTS_FILE,
                     "JHC_EXPORTS": addresses.apply(
                         lambda ips: render_exports(settings.data_dir, list(ips)))},
        opts=parent)
    # The join token is the step's stdout: a secret output, and kept out of the log
    # (pulumi-command local.Command docs, `logging`: "If there might be secrets in the output,
    # you can disable logging here and mark the outputs as secret via 'additionalSecretOutputs'").
    # A raised generation is a changed input: with no `update` command pulumi-command runs
    # `create` again (local.Command docs, `create`: "If an update command isn't provided, then
    # create will also be run when the resource's inputs are modified"), and swarm-init.sh
    # rotates the token; the new token is a changed stdin of each join step, which reruns as a
    # no-op for a joined worker. Generation 0 adds nothing: a stack's inputs stay as they were.
    generation = settings.workers.join_token_generation if settings.workers else 0
    rotation = {"JHC_JOIN_TOKEN_GENERATION": str(generation)} if generation else {}
    swarm = command.local.Command(
        f"{name}-swarm", create="bash scripts/swarm-init.sh",
        delete="bash scripts/swarm-dissolve.sh", logging="stderr",
        environment={**to_manager, "JHC_ADVERTISE_ADDR": manager_address,
                     "JHC_REGISTRY_PORT": str(REGISTRY_PORT), **rotation},
        opts=pulumi.ResourceOptions(parent=host, additional_secret_outputs=["stdout"]))
    token = pulumi.Output.secret(swarm.stdout)

    joins = []
    for index, worker in enumerate(workers):
        prefix = f"{name}-worker-{index}"
        known_hosts = worker.server_id.apply(lambda sid: known_hosts_for(settings, sid))
        worker_opts = _joined(ssh_options(settings, known_hosts))
        target = worker.private_address.apply(lambda ip: f"{settings.ssh_user}@{ip}")
        ready = command.local.Command(
            f"{prefix}-ready", create=f"bash {WAIT_SCRIPT}",
            environment={"JHC_SSH_TARGET": target, "JHC_SSH_OPTS": worker_opts,
                         "JHC_KNOWN_HOSTS": known_hosts, "JHC_JUMP_TARGET": manager,
                         "JHC_JUMP_SSH_OPTS": manager_opts},
            triggers=[worker.server_id], opts=parent)
        # Its delete drains the node. "When deleting a resource R, Pulumi requires that all
        # resources that depend on R be deleted before R" (pulumi/pulumi#2167; pulumi docs
        # "dependsOn": the order holds for "creation, update, and deletion"): this step depends
        # on the worker's server and ready step, so the drain runs while the VM is still there,
        # whether the worker is removed or replaced (DBR deletes dependents first, #1365).
        joins.append(command.local.Command(
            f"{prefix}-join", create="bash scripts/swarm-join.sh",
            delete="bash scripts/swarm-leave.sh", stdin=token,
            environment={**to_manager, "JHC_MANAGER_ADDR": manager_address,
                         "JHC_WORKER_TARGET": target, "JHC_WORKER_SSH_OPTS": worker_opts},
            triggers=[worker.server_id],
            opts=pulumi.ResourceOptions(parent=host,
                                        depends_on=[worker.server, ready, nfs, swarm])))
    ready_all = pulumi.Output.all(*[j.stdout for j in joins]).apply(
        lambda ids: f"{len(ids)} workers joined")
    return Cluster(manager_address=manager_address, worker_count=len(workers), ready=ready_all)

