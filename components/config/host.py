"""The host layer's keys: cloud, SSH, volume, per-cloud machine settings, architecture."""

from __future__ import annotations

import ipaddress
import os
import platform
import re
from pathlib import Path
from typing import Any

from components.config.reader import _hhmm, _Reader
from components.config.settings import (
    CLOUDS,
    PROJECT,
    AwsSettings,
    ConfigError,
    DataSnapshots,
    HostSettings,
    LocalSettings,
    OpenStackSettings,
)
from components.config.workers import _unused_worker_keys, _workers


def _admin_cidrs(values: tuple[str, ...]) -> tuple[str, ...]:
    cidrs = []
    for text in values:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as err:
            raise ConfigError("adminCidrs", f"{text!r} is not a valid CIDR ({err})",
                              "Write networks like 203.0.113.0/24 or 2001:db8::/48") from None
        if net.prefixlen == 0:
            raise ConfigError("adminCidrs", f"{text} opens SSH to the whole internet",
                              "List only the networks your admins connect from")
        cidrs.append(str(net))
    return tuple(cidrs)


_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com"
                      r"|sk-ecdsa-sha2-nistp256@openssh.com) [A-Za-z0-9+/=]+( .*)?$")


def _local_publishing(r: _Reader) -> tuple[str, str]:
    """Loopback unless the admin names another address; the site defaults to what is bound."""
    text = r.string("localBindAddress") or "127.0.0.1"
    try:
        bind = ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError("localBindAddress", f"{text!r} is not an IP address",
                          "Use 127.0.0.1 (this machine only), a LAN address of this machine, "
                          "or 0.0.0.0 (every interface)") from None
    site = r.string("localSiteName")
    if site is None:
        if bind.is_unspecified:
            raise ConfigError("localSiteName", f"is required when localBindAddress is {bind}",
                              "Set the host name or address people open, e.g. "
                              "`pulumi config set localSiteName hub.lab.example.org`: the "
                              "certificate is issued for it")
        site = "localhost" if bind.is_loopback else str(bind)
    elif not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9a-fA-F:.]+", site):
        raise ConfigError("localSiteName", f"{site!r} is not a host name or IP address",
                          "Use the name or address people type into the browser, without "
                          "scheme or port")
    return str(bind), site


def _host(r: _Reader, stack: str) -> HostSettings:
    cloud = r.string("cloud")
    if cloud not in CLOUDS:
        raise ConfigError("cloud", f"unknown cloud {cloud!r}",
                          f"Use one of: {', '.join(CLOUDS)}")
    is_cloud = cloud != "local"
    public_key = r.string("sshPublicKey")
    if is_cloud:
        if public_key is None:
            raise ConfigError("sshPublicKey", f"is required for cloud={cloud}",
                              "Run `pulumi config set sshPublicKey \"$(cat ~/.ssh/id_ed25519.pub)\"`")
        if not _SSH_KEY.match(public_key.strip()):
            raise ConfigError("sshPublicKey", "is not an OpenSSH public key",
                              "Paste one line of a .pub file (never the private key)")
        public_key = public_key.strip()
    cidrs = _admin_cidrs(r.strings("adminCidrs"))
    if is_cloud and not cidrs:
        raise ConfigError("adminCidrs", f"is required for cloud={cloud}",
                          "Run `pulumi config set --path 'adminCidrs[0]' <your-ip>/32`")
    bytes_per_inode = r.integer("dataVolumeBytesPerInode", 1024, 65536)
    if bytes_per_inode & (bytes_per_inode - 1):
        raise ConfigError("dataVolumeBytesPerInode", f"{bytes_per_inode} is not a power of two",
                          "Use 1024, 2048, 4096, 8192, 16384, 32768 or 65536")
    for name, pattern, example in (("dockerLogMaxSize", r"^[1-9][0-9]*[kmg]$", "50m"),
                                   ("pruneUntil", r"^[1-9][0-9]*h$", "168h"),
                                   ("pruneSchedule", r"^[A-Za-z0-9*:/,. -]+$", "weekly")):
        if not re.match(pattern, r.string(name)):
            raise ConfigError(name, f"{r.string(name)!r} is malformed", f"Use a value like {example}")
    known_hosts = r.string("sshKnownHostsFile") or f"~/.ssh/{PROJECT}-{stack}.known_hosts"
    architecture = r.string("hostArchitecture")
    if architecture not in (None, "amd64", "arm64"):
        raise ConfigError("hostArchitecture", f"unknown architecture {architecture!r}",
                          "Use amd64 or arm64, or leave it unset")
    settings: dict[str, Any] = {}
    if cloud == "openstack":
        why = "for cloud=openstack"
        settings["openstack"] = OpenStackSettings(
            image=r.required("openstackImage", why), flavor=r.required("openstackFlavor", why),
            network=r.required("openstackNetwork", why),
            floating_ip_pool=r.required("openstackFloatingIpPool", why),
            volume_type=r.string("openstackVolumeType"),
            availability_zone=r.string("openstackAvailabilityZone"))
    elif cloud == "aws":
        ami = r.string("awsAmi")
        if ami is not None and not re.match(r"^ami-[0-9a-f]{8,17}$", ami):
            raise ConfigError("awsAmi", f"{ami!r} is not an AMI id", "Use an id like ami-0abc12345678")
        settings["snapshots"] = DataSnapshots(
            keep=r.integer("awsDataSnapshotsKeep", 0, 1000), time=_hhmm(r, "awsDataSnapshotTime"))
        aws = _aws(r, ami)
        settings["aws"] = aws
        derived = "arm64" if is_graviton(aws.instance_type) else "amd64"
        if architecture and architecture != derived:
            raise ConfigError("hostArchitecture", f"{architecture} does not match "
                              f"awsInstanceType {aws.instance_type} ({derived})",
                              f"Unset hostArchitecture (it follows the instance type) or choose "
                              f"an {architecture} instance type")
        architecture = derived
    else:
        data_dir = r.string("localDataDir") or f"~/.local/share/{PROJECT}/{stack}"
        bind, site = _local_publishing(r)
        settings["local"] = LocalSettings(data_dir=str(Path(os.path.expanduser(data_dir))),
                                          docker_host=r.string("localDockerHost"),
                                          https_port=r.integer("localHttpsPort", 1, 65535),
                                          http_port=r.integer("localHttpPort", 1, 65535),
                                          bind_address=bind, site_name=site)
        # The local engine runs on this machine's CPU (Docker Desktop's VM too).
        architecture = architecture or _MACHINES.get(platform.machine().lower(), "amd64")
    _unused_worker_keys(r, cloud)
    workers = _workers(r, cloud, settings.get("openstack"), settings.get("aws"))
    if workers is not None:
        settings["workers"] = workers
    return HostSettings(
        cloud=cloud, ssh_user=r.string("sshUser"), ssh_public_key=public_key,
        ssh_private_key_path=r.string("sshPrivateKeyPath"), known_hosts_file=known_hosts,
        admin_cidrs=cidrs, existing_data_volume_id=r.string("existingDataVolumeId"),
        data_volume_size_gb=r.integer("dataVolumeSizeGb", 10, 16384),
        bytes_per_inode=bytes_per_inode, allow_data_loss=r.boolean("allowDataLoss"),
        nofile_limit=r.integer("hostNofileLimit", 1024, 1048576),
        nproc_limit=r.integer("hostNprocLimit", 1024, 4194304),
        docker_log_max_size=r.string("dockerLogMaxSize"),
        docker_log_max_files=r.integer("dockerLogMaxFiles", 1, 100),
        prune_schedule=r.string("pruneSchedule"), prune_until=r.string("pruneUntil"),
        host_generation=r.integer("hostGeneration", 0, 1_000_000),
        architecture=architecture or "amd64", **settings)


_MACHINES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# EBS sizes and IOPS (EC2 CreateVolume API reference): st1/sc1 need 125-16384 GiB; io1 and io2
# need Iops (io1 100-64000, io2 100-256000); gp3 takes 3000-16000 (default 3000).
_MIN_SIZE = {"st1": 125, "sc1": 125, "io1": 4, "io2": 4}
_IOPS = {"io1": (100, 64000), "io2": (100, 256000), "gp3": (3000, 16000)}


def is_graviton(instance_type: str) -> bool:
    """AWS names Graviton (arm64) types with a "g" among the attributes after the generation
    digit: m7g, c7gn, m6gd, t4g, im4gn, g5g (EC2 "instance type naming conventions")."""
    family = instance_type.split(".", 1)[0]
    match = re.match(r"^[a-z]+[0-9]+([a-z-]*)$", family)
    return bool(match and "g" in match.group(1))


def _aws(r: _Reader, ami: str | None) -> AwsSettings:
    volume_type = r.string("awsDataVolumeType")
    if volume_type not in ("gp3", "gp2", "io1", "io2", "st1", "sc1"):
        raise ConfigError("awsDataVolumeType", f"unsupported type {volume_type!r}",
                          "Use gp3, gp2, io1, io2, st1 or sc1")
    size = r.integer("dataVolumeSizeGb", 10, 16384)
    if size < _MIN_SIZE.get(volume_type, 0):
        raise ConfigError("dataVolumeSizeGb", f"{size} GiB is below the minimum of "
                          f"{_MIN_SIZE[volume_type]} GiB for awsDataVolumeType {volume_type}",
                          f"Set dataVolumeSizeGb to at least {_MIN_SIZE[volume_type]} "
                          "or choose gp3")
    iops = r.integer("awsDataVolumeIops", 0, 256000) or None
    if volume_type in ("io1", "io2") and iops is None:
        raise ConfigError("awsDataVolumeIops", f"is required for awsDataVolumeType {volume_type}",
                          "Run `pulumi config set awsDataVolumeIops 3000` (or choose gp3)")
    if iops is not None:
        if volume_type not in _IOPS:
            raise ConfigError("awsDataVolumeIops", f"does not apply to {volume_type} volumes",
                              "Unset it, or choose gp3, io1 or io2")
        low, high = _IOPS[volume_type]
        if not low <= iops <= high:
            raise ConfigError("awsDataVolumeIops", f"{iops} is out of range {low}-{high} for "
                              f"{volume_type}", f"Choose a value between {low} and {high}")
    vpc_id, subnet_id = r.string("awsVpcId"), r.string("awsSubnetId")
    if vpc_id and not subnet_id:
        # Only a default VPC has default subnets to pick from.
        raise ConfigError("awsSubnetId", "is required when awsVpcId is set",
                          "Set awsSubnetId to a subnet of that VPC, or unset awsVpcId to use "
                          "the default VPC")
    return AwsSettings(
        instance_type=r.required("awsInstanceType", "for cloud=aws"), ami=ami, vpc_id=vpc_id,
        subnet_id=subnet_id, root_volume_size_gb=r.integer("awsRootVolumeSizeGb", 8, 1024),
        data_volume_type=volume_type, data_volume_iops=iops)
