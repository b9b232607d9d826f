"""The stack config keys: one table that Pulumi.yaml, the loader and the README reference agree with.

Tests compare this table with Pulumi.yaml's `config:` block and with the README, so a key cannot be
added in one place and forgotten in another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# "objects" are lists of mappings: Pulumi.yaml cannot declare their type (its config types are
# string/integer/boolean/array of scalars), so they are declared only here and validated by the loader.
KeyType = Literal["string", "integer", "boolean", "array", "objects"]

# What happens when a key changes on a running deployment (the README column "after deploy").
NOTHING = "nothing"
RESTART = "service containers restart"
HOST = "host replaced (root disk only)"
DATA = "data volume or IP replaced: refused while protected (see allowDataLoss)"
RESIZE = "host resized in place (reboots; user servers restart)"
GROW = "volume grows in place (then resize2fs on the host); shrinking is refused while protected"
NEW_PLACE = "a new, empty deployment elsewhere; existing data is not moved"
NEW_HOST_ONLY = "ignored by a running host (applies to the next host)"


@dataclass(frozen=True)
class Key:
    name: str
    type: KeyType
    description: str
    default: Any = ""  # "" = unset: Pulumi treats a declared key without default as required
    after_deploy: str = NOTHING
    secret: bool = False
    layer: Literal["host", "service"] = "host"


KEYS: tuple[Key, ...] = (
    # --- host layer: the only keys the VM's inputs may depend on ---
    Key("cloud", "string", "Where the host runs: openstack, aws or local (the local Docker engine).",
        "local", NEW_PLACE),
    Key("sshPublicKey", "string",
        "OpenSSH public key of the admin (openstack/aws). Installed for the image's default user.",
        "", HOST),
    Key("sshUser", "string", "Login user of the cloud image (ubuntu for Ubuntu, debian for Debian).",
        "ubuntu", NEW_HOST_ONLY),
    Key("sshPrivateKeyPath", "string",
        "Private key file on the machine running pulumi, passed to ssh -i. Unset: use ssh-agent.",
        "", NOTHING),
    Key("sshKnownHostsFile", "string",
        "known_hosts file used for this stack's host (trust on first use, then pinned). "
        "Default: ~/.ssh/jupyterhub-cloud-<stack>.known_hosts.", "", NOTHING),
    Key("adminCidrs", "array",
        "CIDRs allowed to reach SSH (22). Required for openstack/aws; 0.0.0.0/0 and ::/0 are refused.",
        [], NOTHING),
    Key("dataVolumeSizeGb", "integer",
        "Size of the data volume in GiB (10-16384). Holds Docker, all service state and user data.",
        100, GROW),
    Key("dataVolumeBytesPerInode", "integer",
        "mkfs.ext4 -i for a NEW data volume (1024-65536, power of two): small = many inodes, "
        "which image layers eat. An existing filesystem is never reformatted.", 4096,
        NEW_HOST_ONLY),
    Key("allowDataLoss", "boolean",
        "true lets pulumi replace or destroy the data volume and public IP. Default false: they are "
        "protected and retained on destroy.", False, NOTHING),
    Key("hostNofileLimit", "integer", "nofile limit for Docker and logins on the host.", 1048576,
        NEW_HOST_ONLY),
    Key("hostNprocLimit", "integer", "nproc limit for Docker and logins on the host.", 65536,
        NEW_HOST_ONLY),
    Key("dockerLogMaxSize", "string", "Docker json-file log rotation size per file (e.g. 50m).",
        "50m", NEW_HOST_ONLY),
    Key("dockerLogMaxFiles", "integer", "Docker json-file log files kept per container.", 5,
        NEW_HOST_ONLY),
    Key("pruneSchedule", "string",
        "systemd OnCalendar of the host's image/build-cache prune timer.", "weekly", NEW_HOST_ONLY),
    Key("pruneUntil", "string", "Prune only what is unused for longer than this (Docker duration).",
        "168h", NEW_HOST_ONLY),
    Key("openstackImage", "string", "Glance image name (Ubuntu 24.04 or Debian 12).", "",
        NEW_HOST_ONLY),
    Key("openstackFlavor", "string", "Nova flavor name.", "", RESIZE),
    Key("openstackNetwork", "string", "Neutron network name the host's port is on.", "", HOST),
    Key("openstackFloatingIpPool", "string", "External network (pool) of the floating IP.", "",
        DATA),
    Key("openstackVolumeType", "string", "Cinder volume type of the data volume (optional).", "",
        DATA),
    Key("openstackAvailabilityZone", "string", "Availability zone of host and volume (optional).",
        "", DATA),
    Key("awsInstanceType", "string", "EC2 instance type.", "", RESIZE),
    Key("awsAmi", "string",
        "Pinned AMI id. Unset: the newest Ubuntu 24.04 AMI at first deploy (later drift ignored).",
        "", NEW_HOST_ONLY),
    Key("awsVpcId", "string", "VPC id (optional; default VPC when unset).", "", HOST),
    Key("awsSubnetId", "string", "Subnet id (optional; first subnet of the VPC when unset).", "",
        DATA),
    Key("awsRootVolumeSizeGb", "integer", "Encrypted root disk size in GiB (8-1024).", 30, HOST),
    Key("awsDataVolumeType", "string", "EBS type of the data volume (gp3, gp2, io1, io2, st1).",
        "gp3", DATA),
    Key("localDataDir", "string",
        "local stack: directory holding all state. Default ~/.local/share/jupyterhub-cloud/<stack>.",
        "", NEW_PLACE),
    Key("localDockerHost", "string", "local stack: Docker engine address.",
        "unix:///var/run/docker.sock", RESTART),
)

BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}

