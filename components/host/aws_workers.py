"""Swarm workers on AWS: a security group, and per worker an instance in the main host's subnet.

No Elastic IP, and by default no public address (`associate_public_ip_address=False`, pulumi-aws
ec2.Instance "Whether to associate a public IP address with an instance in a VPC"); the operator
reaches a worker through the main host (ssh -J). Rules name the other group as their source
(`referenced_security_group_id` of vpc.SecurityGroupIngressRule, AWS "the instances that are
associated with a source security group"), never a CIDR; the main host's group gets them as new
rule resources, so its group and instance keep their inputs.
"""

from __future__ import annotations

import pulumi

from components.config import HostSettings
from components.host import Host
from components.host.aws_sdk import ec2, vpc
from components.host.cluster import WorkerVm, join_workers
from components.host.security import MANAGER, WORKER, node_rules
from components.host.worker_bootstrap import worker_user_data

ESP = "50"  # IP protocol number of ESP (AWS takes numbers for protocols without a name)


def aws_workers(host: Host, name: str, args: HostSettings, *, ami: pulumi.Input[str],
                subnet_id: pulumi.Input[str], vpc_id: pulumi.Input[str], key_name: pulumi.Input[str],
                manager_group: ec2.SecurityGroup, manager: ec2.Instance) -> list[WorkerVm]:
    """Declares the workers and their steps; sets host.cluster and host.worker_addresses."""
    assert args.aws is not None and args.workers is not None
    workers_cfg = args.workers
    child = pulumi.ResourceOptions(parent=host)
    group = ec2.SecurityGroup(f"{name}-worker-secgroup", vpc_id=vpc_id,
                              description="jupyterhub-cloud swarm workers: stack nodes only",
                              opts=child)
    vpc.SecurityGroupEgressRule(f"{name}-worker-out-v4", security_group_id=group.id,
                                ip_protocol="-1", cidr_ipv4="0.0.0.0/0", opts=child)
    vpc.SecurityGroupEgressRule(f"{name}-worker-out-v6", security_group_id=group.id,
                                ip_protocol="-1", cidr_ipv6="::/0", opts=child)
    groups = {MANAGER: manager_group.id, WORKER: group.id}
    for rule in node_rules():
        ports = {"from_port": rule.port, "to_port": rule.port} if rule.port else {}
        vpc.SecurityGroupIngressRule(
            f"{name}-swarm-{rule.label}", security_group_id=groups[rule.to],
            referenced_security_group_id=groups[rule.source],
            ip_protocol=ESP if rule.protocol == "esp" else rule.protocol, opts=child, **ports)

    manager_address = manager.private_ip
    rendered = manager_address.apply(lambda ip: worker_user_data(args, ip))
    workers = []
    for index in range(workers_cfg.count):
        server = ec2.Instance(
            f"{name}-worker-{index}-server", ami=ami, instance_type=workers_cfg.size,
            subnet_id=subnet_id, key_name=key_name, vpc_security_group_ids=[group.id],
            associate_public_ip_address=workers_cfg.public_ip,
            root_block_device={"volume_size": workers_cfg.root_volume_size_gb,
                               "volume_type": "gp3", "encrypted": True},
            # As on the main host: IMDSv2 only, unreachable from containers.
            metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 1,
                              "http_endpoint": "enabled"},
            user_data=rendered,
            # A new manager address must reach the worker's bootstrap: replace it (drained
            # first) instead of AWS's stop/modify/start (pulumi-aws Instance docs).
            user_data_replace_on_change=True,
            tags={"Name": f"{name}-worker-{index}", "jupyterhub-cloud": "worker"},
            # A drifting "most recent AMI" lookup never replaces running workers.
            # A new size would stop/modify/start the instance without a drain: replaced
            # instead, so the join step's delete drains the old worker first.
            opts=pulumi.ResourceOptions(parent=host, ignore_changes=["ami"],
                                        replace_on_changes=["instance_type", "root_block_device"]))
        workers.append(WorkerVm(server, server.id, server.private_ip))
    host.cluster = join_workers(host, name, args, manager_address, workers)
    host.worker_addresses = pulumi.Output.all(*[w.private_address for w in workers])
    return workers
