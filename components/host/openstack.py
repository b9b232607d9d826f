"""The Docker host on OpenStack: key pair, security group, port, server, data volume, floating IP."""

from __future__ import annotations

import pulumi
import pulumi_openstack as openstack

from components.config import BackupSettings, HostSettings
from components.host import BackupTarget, Host, keep_data, pinned_server_inputs, roll_options, user_data
from components.host.bootstrap import data_device_candidates_openstack
from components.host.openstack_backup import swift_backup_target
from components.host.openstack_workers import openstack_workers
from components.host.security import ingress_rules


class OpenStackHost(Host):
    def __init__(self, name: str, args: HostSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:host:OpenStackHost", name, None, opts)
        assert args.openstack is not None
        os_ = args.openstack
        child = pulumi.ResourceOptions(parent=self)

        keypair = openstack.compute.Keypair(f"{name}-key", public_key=args.ssh_public_key,
                                            opts=child)
        group = openstack.networking.SecGroup(
            f"{name}-secgroup", description="jupyterhub-cloud host: SSH from admins, HTTP(S)",
            delete_default_rules=True, opts=child)
        for rule in ingress_rules(args.admin_cidrs):
            openstack.networking.SecGroupRule(
                f"{name}-in-{rule.label}", direction="ingress", ethertype=rule.ethertype,
                protocol="tcp", port_range_min=rule.port, port_range_max=rule.port,
                remote_ip_prefix=rule.cidr, security_group_id=group.id, opts=child)
        for ethertype, cidr in (("IPv4", "0.0.0.0/0"), ("IPv6", "::/0")):
            openstack.networking.SecGroupRule(
                f"{name}-out-{ethertype.lower()}", direction="egress", ethertype=ethertype,
                remote_ip_prefix=cidr, security_group_id=group.id, opts=child)

        network = openstack.networking.get_network_output(name=os_.network)
        port = openstack.networking.Port(
            f"{name}-port", network_id=network.id, security_group_ids=[group.id],
            admin_state_up=True, opts=child)

        if args.existing_data_volume_id:
            volume = openstack.blockstorage.Volume.get(f"{name}-data", args.existing_data_volume_id,
                                                       opts=child)
        else:
            volume = openstack.blockstorage.Volume(
                f"{name}-data", size=args.data_volume_size_gb, volume_type=os_.volume_type,
                availability_zone=os_.availability_zone, enable_online_resize=True,
                description="jupyterhub-cloud data: Docker, service state, user homes",
                opts=keep_data(args, self))

        rendered = volume.id.apply(
            lambda vid: user_data(args, data_device_candidates_openstack(vid)))
        pinned = pinned_server_inputs(name, args, {"image": os_.image, "userData": rendered}, self)
        server = openstack.compute.Instance(
            f"{name}-server", image_name=pinned["image"] if pinned else os_.image,
            flavor_name=os_.flavor, key_pair=keypair.name,
            availability_zone=os_.availability_zone,
            networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
            user_data=pinned["userData"] if pinned else rendered,
            opts=pulumi.ResourceOptions(
                parent=self, **roll_options(pinned,
                                            # OpenStack rebuilds in place on an image change,
                                            # wiping the root disk: never by accident.
                                            ["image_name", "image_id", "user_data"])))

        attach = openstack.compute.VolumeAttach(
            f"{name}-data-attach", instance_id=server.id, volume_id=volume.id,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))

        fip = openstack.networking.FloatingIp(f"{name}-ip", pool=os_.floating_ip_pool,
                                              description="jupyterhub-cloud host",
                                              opts=keep_data(args, self))
        assoc = openstack.networking.FloatingIpAssociate(
            f"{name}-ip-assoc", floating_ip=fip.address, port_id=port.id, opts=child)

        self.data_volume_id = volume.id
        self._wait_until_ready(name, args, fip.address, server.id, depends_on=[attach, assoc])
        if args.workers:
            openstack_workers(self, name, args, keypair, group, network.id, port)
        self._register()

    def _default_backup_target(self, name: str, backup: BackupSettings,
                               host: HostSettings) -> BackupTarget:
        """A Swift container of this stack, with a credential limited to it where the cloud
        enforces access rules (components.openstack_backup)."""
        return swift_backup_target(name, pulumi.get_stack(), keep_data(host, self), self)
