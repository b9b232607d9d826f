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
HUB = "hub container replaced; running user servers keep running"
LDAP = "LDAP reconciled on the next pulumi up; no restart"
TLS = "Caddy restarts (seconds); a new certificate may be requested"
SPAWN = "hub restarts; applies to servers started afterwards"
NEW_PLACE = "a new, empty deployment elsewhere; existing data is not moved"
NEW_HOST_ONLY = "ignored by a running host (applies at the next hostGeneration)"
BACKUP = "backup container replaced (it backs up at start); VM and volume untouched"
SNAPSHOTS = "snapshot policy updated; VM and volume untouched"
ROLL = ("host rolled: services stopped, volume detached, new server with the current image and "
        "bootstrap on the same volume and IP (user servers stop)")
REBUILD = "every image rebuilt for the new platform; containers replaced"
IOPS = "volume modified in place"
WORKERS = ("workers added (new VMs, joined to the swarm) or drained and removed; the main host, "
           "its volume and IP are untouched")
WORKER_SIZE = ("workers replaced, each drained before its VM is deleted; the main host is "
               "untouched")
JOIN_TOKEN = ("the swarm's worker join token rotated on the manager; joined workers, the main "
              "host and running servers are untouched")


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
        "Base of the stack's pinned SSH host keys: one file per server under <this>.d/ (trust on "
        "first use, then pinned). Default: ~/.ssh/jupyterhub-cloud-<stack>.known_hosts.", "",
        NOTHING),
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
    Key("existingDataVolumeId", "string",
        "Re-attach this existing data volume (e.g. from a destroyed stack) instead of creating one. "
        "Pulumi then only reads it and never deletes it.", "", HOST),
    Key("hostGeneration", "integer",
        "Raise by one to roll the host: a new server with the current image and bootstrap, on the "
        "same data volume and IP (0-1000000; see the admin guide's Day 2).", 0, ROLL),
    Key("hostArchitecture", "string",
        "CPU of the host, amd64 or arm64; images are built for it. Unset: from awsInstanceType "
        "(Graviton types are arm64), amd64 on OpenStack, this machine's CPU for local.", "",
        REBUILD),
    Key("allowDataLoss", "boolean",
        "true lets pulumi replace or destroy the data volume, public IP and generated secrets. "
        "Default false: they are protected and retained on destroy.", False, NOTHING),
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
    Key("awsDataVolumeType", "string",
        "EBS type of the data volume (gp3, gp2, io1, io2, st1, sc1; st1/sc1 need >= 125 GiB).",
        "gp3", DATA),
    Key("awsDataSnapshotsKeep", "integer",
        "aws: EBS snapshots of the data volume kept by the Data Lifecycle Manager (daily; 0: no "
        "snapshot policy). A crash-consistent copy of the whole volume, beside the restic backups.",
        7, SNAPSHOTS),
    Key("awsDataSnapshotTime", "string", "aws: daily snapshot time, HH:MM UTC.", "03:30",
        SNAPSHOTS),
    Key("awsDataVolumeIops", "integer",
        "Provisioned IOPS of the data volume: required for io1/io2, optional for gp3 (0: the "
        "type's default).", 0, IOPS),
    Key("hostWorkers", "integer",
        "Worker VMs (0-50) that run user servers in a Docker Swarm managed by the main host "
        "(openstack/aws; see the admin guide's Scale out). 0: one host, as before.", 0, WORKERS),
    Key("hostWorkersJoinTokenGeneration", "integer",
        "Raise it (0-1000000) to rotate the swarm's worker join token, e.g. after it may have "
        "leaked: the old token stops working; joined workers stay. Used with hostWorkers > 0.",
        0, JOIN_TOKEN),
    Key("openstackWorkerFlavor", "string", "Nova flavor of each worker. Unset: openstackFlavor.",
        "", WORKER_SIZE),
    Key("awsWorkerInstanceType", "string",
        "EC2 instance type of each worker, same CPU architecture as awsInstanceType. Unset: "
        "awsInstanceType.", "", WORKER_SIZE),
    Key("awsWorkerRootVolumeSizeGb", "integer",
        "Encrypted root disk of each worker in GiB (20-1024): Docker's images and the servers' "
        "scratch space (homes stay on the main host).", 50, WORKER_SIZE),
    Key("awsWorkerPublicIp", "boolean",
        "Give workers a public IPv4 address for outbound traffic (package installs). Needed in "
        "a subnet without a NAT gateway, such as the default VPC's; inbound stays closed to all "
        "but the stack's nodes.", False, WORKER_SIZE),
    Key("localDataDir", "string",
        "local stack: directory holding all state. Default ~/.local/share/jupyterhub-cloud/<stack>.",
        "", NEW_PLACE),
    Key("localDockerHost", "string", "local stack: Docker engine address.",
        "unix:///var/run/docker.sock", RESTART),
    Key("localHttpsPort", "integer", "local stack: HTTPS port on localBindAddress.", 8443, TLS),
    Key("localHttpPort", "integer", "local stack: HTTP port on localBindAddress (redirects to "
        "HTTPS).", 8080, TLS),
    Key("localBindAddress", "string",
        "local stack: address Caddy's ports are published on. Default 127.0.0.1 (this machine "
        "only); a LAN address or 0.0.0.0 serves the network.", "", TLS),
    Key("localSiteName", "string",
        "local stack: the name or address people open; Caddy's internal CA certifies it. "
        "Default: localhost, or the bind address when that is a LAN address.", "", TLS),
)

SERVICE_KEYS: tuple[Key, ...] = (
    Key("domain", "string", "Public DNS name of the hub. With acmeEmail: a Let's Encrypt certificate; "
        "unset: Caddy's internal CA for the public address.", "", TLS, layer="service"),
    Key("acmeEmail", "string", "Contact address for Let's Encrypt (needs domain).", "", TLS,
        layer="service"),
    Key("acmeStaging", "boolean", "Use Let's Encrypt's staging CA (for test stacks: no rate limits).",
        False, TLS, layer="service"),
    Key("auth", "string", "Login method: ldap (the users below) or github (OAuth).", "ldap", HUB,
        layer="service"),
    Key("ldapBaseDn", "string", "Base DN of the directory. Fixed once LDAP is initialised.",
        "dc=jupyterhub,dc=internal", NEW_PLACE, layer="service"),
    Key("ldapOrganisation", "string", "Organisation name written at LDAP initialisation.",
        "JupyterHub", NOTHING, layer="service"),
    Key("users", "objects", "Accounts: [{name, fullName, email, groups: [..], admin: bool, uid, "
        "password (secret; else generated), passwordGeneration (raise to reset a generated one)}]. "
        "Removing one disables the login; the home directory stays.", [], LDAP,
        layer="service"),
    Key("groups", "objects", "LDAP groups: [{name, gid}] (gid optional, derived from the name).", [],
        LDAP, layer="service"),
    Key("adminUsers", "array", "Extra hub admins by login name (e.g. GitHub users).", [], HUB,
        layer="service"),
    Key("allowedUsers", "array", "Only these (plus allowedGroups members) may log in; empty: all "
        "declared users (ldap) or nobody but allowedGithubOrgs (github).", [], HUB, layer="service"),
    Key("allowedGroups", "array", "LDAP groups whose members may log in.", [], HUB, layer="service"),
    Key("blockedUsers", "array", "Never allowed to log in, whatever else says.", [], HUB,
        layer="service"),
    Key("images", "objects", "Spawner menu: [{name, displayName, path (a directory under images/), "
        "groups: [..]}]. Empty groups: everyone. Default: minimal, scipy, r.", [], SPAWN,
        layer="service"),
    Key("datasets", "objects", "Read-only mounts: [{name, path}] (path on the host; default "
        "<data dir>/datasets/<name>).", [], SPAWN, layer="service"),
    Key("memLimit", "string", "Memory limit of each user server (e.g. 512M, 1.5G).", "2G", SPAWN,
        layer="service"),
    Key("cpuLimit", "string", "CPU limit of each user server, in cores (e.g. 0.5, 1.5; at most 2 "
        "decimals).", "1", SPAWN,
        layer="service"),
    Key("cullIdleTimeout", "integer", "Stop user servers idle this many seconds (0: never).", 3600,
        HUB, layer="service"),
    Key("githubClientId", "string", "GitHub OAuth app client id (auth: github).", "", HUB,
        layer="service"),
    Key("githubClientSecret", "string", "GitHub OAuth app client secret (auth: github). Set with "
        "--secret.", "", HUB, secret=True, layer="service"),
    Key("githubAllowedOrgs", "array", "GitHub organisations whose members may log in.", [], HUB,
        layer="service"),
    Key("backupEnabled", "boolean", "Nightly restic backups of the hub database, LDAP, homes, "
        "shared data, ACME state and hub keys (see docs/admin-guide.md, Backups).", True, BACKUP,
        layer="service"),
    Key("backupRepository", "string", "restic repository (a path on the host, s3:..., swift:..., "
        "b2:..., rest:..., sftp:...). Unset: aws: an S3 bucket the stack creates; openstack: a "
        "Swift container the stack creates; local: <localDataDir>-backups.", "", BACKUP,
        layer="service"),
    Key("backupRepositoryEnv", "string", "Credentials for backupRepository as a JSON object of "
        "environment variables restic reads (e.g. AWS_ACCESS_KEY_ID). Set with --secret.", "",
        BACKUP, secret=True, layer="service"),
    Key("backupTime", "string", "Daily backup time, HH:MM UTC (the first backup runs when the "
        "backup container starts).", "02:30", BACKUP, layer="service"),
    Key("backupKeepDaily", "integer", "Daily snapshots kept (restic forget --keep-daily).", 7,
        BACKUP, layer="service"),
    Key("backupKeepWeekly", "integer", "Weekly snapshots kept.", 4, BACKUP, layer="service"),
    Key("backupKeepMonthly", "integer", "Monthly snapshots kept.", 6, BACKUP, layer="service"),
    Key("backupCheckEveryDays", "integer", "Run restic check (reading backupCheckReadDataPercent "
        "of the data) after a backup at most every this many days (0: never).", 7, BACKUP,
        layer="service"),
    Key("backupCheckReadDataPercent", "integer", "Share of the repository's data the periodic "
        "check reads back and verifies (1-100).", 5, BACKUP, layer="service"),
    Key("hubPreviousCryptKeys", "string", "Earlier auth-state keys the hub still decrypts with, "
        "';'-separated (each 32 bytes, hex or base64), while it re-encrypts with the generated "
        "key: set before rotating jhc-secrets-crypt-key (admin guide). Set with --secret.", "",
        HUB, secret=True, layer="service"),
)

KEYS = KEYS + SERVICE_KEYS

BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}

