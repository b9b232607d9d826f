"""Swarm workers on OpenStack: a security group, and per worker a port and a server.

Workers get no floating IP: they are on the stack's network, reached by the operator through the
main host (ssh -J). Their group admits only the stack's nodes (remote_group_id, Neutron's
"remote group": the rule matches traffic from every port in that group); the main host's group
gets the swarm, NFS and registry rules from the worker group as new rule resources, so the main
host's group, port and server keep their inputs.
"""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from components.config import HostSettings
from components.host import Host
from components.host.cluster import WorkerVm, join_workers
from components.host.security import MANAGER, WORKER, node_rules
from components.host.worker_bootstrap import worker_user_data


def openstack_workers(host: Host, name: str, args: HostSettings, keypair: openstack.compute.Keypair,
                      manager_group: openstack.networking.SecGroup,
                      network_id: pulumi.Input[str],
                      manager_port: openstack.networking.Port) -> list[WorkerVm]:
    """Declares the workers and their steps; sets host.cluster and host.worker_addresses."""
    assert args.openstack is not None and args.workers is not None
    os_ = args.openstack
    child = pulumi.ResourceOptions(parent=host)
    group = openstack.networking.SecGroup(
        f"{name}-worker-secgroup", description="jupyterhub-cloud swarm workers: stack nodes only",
        delete_default_rules=True, opts=child)
    for ethertype, cidr in (("IPv4", "0.0.0.0/0"), ("IPv6", "::/0")):
        # Outbound only: package installs at boot, like the main host.
        openstack.networking.SecGroupRule(
            f"{name}-worker-out-{ethertype.lower()}", direction="egress", ethertype=ethertype,
            remote_ip_prefix=cidr, security_group_id=group.id, opts=child)
    groups = {MANAGER: manager_group.id, WORKER: group.id}
    for rule in node_rules():
        ports = {"port_range_min": rule.port, "port_range_max": rule.port} if rule.port else {}
        openstack.networking.SecGroupRule(
            f"{name}-swarm-{rule.label}", direction="ingress", ethertype="IPv4",
            protocol=rule.protocol, remote_group_id=groups[rule.source],
            security_group_id=groups[rule.to], opts=child, **ports)

    manager_address = manager_port.all_fixed_ips[0]
    rendered = manager_address.apply(lambda ip: worker_user_data(args, ip))
    workers = []
    for index in range(args.workers.count):
        port = openstack.networking.Port(
            f"{name}-worker-{index}-port", network_id=network_id, security_group_ids=[group.id],
            admin_state_up=True, opts=child)
        server = openstack.compute.Instance(
            f"{name}-worker-{index}-server", image_name=os_.image, flavor_name=args.workers.size,
            key_pair=keypair.name, availability_zone=os_.availability_zone,
            networks=[openstack.compute.InstanceNetworkArgs(port=port.id)], user_data=rendered,
            opts=pulumi.ResourceOptions(
                parent=host,
                # The port belongs to one server at a time; a newer image never rebuilds a
                # running worker in place (OpenStack rebuilds on an image change, wiping it).
                delete_before_replace=True, ignore_changes=["image_name", "image_id"],
                # A new flavor would resize in place (Nova reboots the server, no drain):
                # replaced instead, so the join step's delete drains it first.
                replace_on_changes=["flavor_name"]))
        workers.append(WorkerVm(server, server.id, port.all_fixed_ips[0]))
    host.cluster = join_workers(host, name, args, manager_address, workers)
    host.worker_addresses = pulumi.Output.all(*[w.private_address for w in workers])
    return workers
