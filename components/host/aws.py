"""The Docker host on AWS: key pair, security group, instance, encrypted EBS data volume, Elastic IP."""

from __future__ import annotations

import pulumi

from components.config import BackupSettings, HostSettings
from components.host import BackupTarget, Host, keep_data, pinned_server_inputs, roll_options, user_data
from components.host.aws_backup import STACK_TAG, data_snapshots, s3_backup_target
from components.host.aws_sdk import ebs, ec2, vpc
from components.host.aws_workers import aws_workers
from components.host.bootstrap import data_device_candidates_aws
from components.host.security import ingress_rules

DATA_DEVICE = "/dev/sdf"
CANONICAL = "099720109477"  # Ubuntu's AMI owner
# Canonical publishes one AMI per architecture; the filter follows the instance type's CPU.
UBUNTU_2404 = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{arch}-server-*"


class AwsHost(Host):
    def __init__(self, name: str, args: HostSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:host:AwsHost", name, None, opts)
        assert args.aws is not None
        aws = args.aws
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)

        vpc_id = aws.vpc_id or ec2.get_vpc_output(default=True, opts=invoke).id
        if aws.subnet_id:
            subnet_id: pulumi.Input[str] = aws.subnet_id
        else:
            # Sorted, so the choice is stable from one run to the next.
            subnet_id = ec2.get_subnets_output(
                filters=[{"name": "vpc-id", "values": [vpc_id]},
                         {"name": "default-for-az", "values": ["true"]}],
                opts=invoke).ids.apply(lambda ids: sorted(ids)[0])
        # The volume must be in the instance's zone; taking it from the subnet avoids a cycle
        # (user_data names the volume, so the volume cannot wait for the instance).
        zone = ec2.get_subnet_output(id=subnet_id, opts=invoke).availability_zone
        ami = aws.ami or ec2.get_ami_output(
            owners=[CANONICAL], most_recent=True,
            filters=[{"name": "name", "values": [UBUNTU_2404.format(arch=args.architecture)]},
                     {"name": "architecture",
                      "values": ["arm64" if args.architecture == "arm64" else "x86_64"]}],
            opts=invoke).id

        keypair = ec2.KeyPair(f"{name}-key", public_key=args.ssh_public_key, opts=child)
        group = ec2.SecurityGroup(f"{name}-secgroup", vpc_id=vpc_id,
                                  description="jupyterhub-cloud host: SSH from admins, HTTP(S)",
                                  opts=child)
        for rule in ingress_rules(args.admin_cidrs):
            family = {"cidr_ipv6" if rule.ethertype == "IPv6" else "cidr_ipv4": rule.cidr}
            vpc.SecurityGroupIngressRule(
                f"{name}-in-{rule.label}", security_group_id=group.id, ip_protocol="tcp",
                from_port=rule.port, to_port=rule.port, opts=child, **family)
        vpc.SecurityGroupEgressRule(f"{name}-out-v4", security_group_id=group.id,
                                    ip_protocol="-1", cidr_ipv4="0.0.0.0/0", opts=child)
        vpc.SecurityGroupEgressRule(f"{name}-out-v6", security_group_id=group.id,
                                    ip_protocol="-1", cidr_ipv6="::/0", opts=child)

        stack = pulumi.get_stack()
        if args.existing_data_volume_id:
            # Must be in the subnet's availability zone; Pulumi only reads it.
            volume = ebs.Volume.get(f"{name}-data", args.existing_data_volume_id, opts=child)
            # The snapshot policy finds volumes by this tag (a separate resource: the volume
            # itself stays read-only).
            ec2.Tag(f"{name}-data-stack-tag", resource_id=volume.id, key=STACK_TAG, value=stack,
                    opts=child)
        else:
            volume = ebs.Volume(
                f"{name}-data", availability_zone=zone, size=args.data_volume_size_gb,
                type=aws.data_volume_type, iops=aws.data_volume_iops, encrypted=True,
                final_snapshot=True,
                tags={"Name": f"{name}-data", "jupyterhub-cloud": "data", STACK_TAG: stack},
                opts=keep_data(args, self))
        if args.snapshots and args.snapshots.keep:
            data_snapshots(f"{name}-snapshots", stack, args.snapshots, self)

        rendered = volume.id.apply(
            lambda vid: user_data(args, data_device_candidates_aws(vid, DATA_DEVICE)))
        pinned = pinned_server_inputs(name, args, {"ami": ami, "userData": rendered}, self)
        instance = ec2.Instance(
            f"{name}-server", ami=pinned["ami"] if pinned else ami,
            instance_type=aws.instance_type, subnet_id=subnet_id,
            key_name=keypair.key_name, vpc_security_group_ids=[group.id],
            root_block_device={"volume_size": aws.root_volume_size_gb, "volume_type": "gp3",
                               "encrypted": True},
            # IMDSv2 only, and a hop limit of 1 so containers cannot reach instance credentials.
            metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 1,
                              "http_endpoint": "enabled"},
            user_data=pinned["userData"] if pinned else rendered,
            # Only a new generation changes user_data; it then replaces the instance instead of
            # the default stop/modify/start (pulumi-aws Instance docs).
            user_data_replace_on_change=True if pinned else None,
            tags={"Name": name},
            opts=pulumi.ResourceOptions(
                parent=self, **roll_options(pinned, ["ami", "user_data", "user_data_base64"])))

        # stop_instance_before_detaching: the instance is stopped before the volume leaves it
        # (pulumi-aws VolumeAttachment docs), after the retire step has unmounted it.
        attach = ec2.VolumeAttachment(
            f"{name}-data-attach", device_name=DATA_DEVICE, instance_id=instance.id,
            volume_id=volume.id, stop_instance_before_detaching=True,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))

        eip = ec2.Eip(f"{name}-ip", domain="vpc", tags={"Name": f"{name}-ip"},
                      opts=keep_data(args, self))
        assoc = ec2.EipAssociation(f"{name}-ip-assoc", allocation_id=eip.allocation_id,
                                   instance_id=instance.id, opts=child)

        self.data_volume_id = volume.id
        self._wait_until_ready(name, args, eip.public_ip, instance.id, depends_on=[attach, assoc])
        if args.workers:
            aws_workers(self, name, args, ami=ami, subnet_id=subnet_id, vpc_id=vpc_id,
                        key_name=keypair.key_name, manager_group=group, manager=instance)
        self._register()

    def _default_backup_target(self, name: str, backup: BackupSettings,
                               host: HostSettings) -> BackupTarget:
        """An S3 bucket of this stack, with an IAM user scoped to it (components.aws_backup)."""
        return s3_backup_target(name, pulumi.get_stack(), keep_data(host, self), self)
