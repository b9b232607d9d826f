"""Stack config → typed, frozen settings, validated before any resource is declared.

The loader is pure (it takes the raw key → string mapping Pulumi hands the program) so every refusal
can be tested without a Pulumi engine. Every error names the config key and says what to do.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import json
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.config.accounts import (
    GID_BASE,
    NAME,
    RESERVED,
    Group,
    User,
    assign_ids,
)
from components.config.keys import BY_NAME, Key
from services.hub.jhc_values import cpu_amount, memory_bytes, normalize_login

PROJECT = "jupyterhub-cloud"
CLOUDS = ("openstack", "aws", "local")
DATA_DIR = "/srv/jupyterhub"
IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
DEFAULT_IMAGES = (
    {"name": "minimal", "displayName": "Python (minimal)", "path": "minimal"},
    {"name": "scipy", "displayName": "Scientific Python", "path": "scipy"},
    {"name": "r", "displayName": "R", "path": "r"},
)


class ConfigError(pulumi.RunError):
    """A stack config value is wrong; pulumi prints the message without a traceback."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        super().__init__(f"config key '{PROJECT}:{key}': {problem}. {fix}")


class StackNameError(pulumi.RunError):
    """The stack name becomes part of every Docker name, and Docker names are lower case."""

    def __init__(self, stack: str) -> None:
        super().__init__(
            f"stack name {stack!r}: Docker container, network and image names are derived from "
            f"it and must be lower case. Create the stack as `pulumi stack init "
            f"{re.sub(r'[^a-z0-9_.-]', '-', stack.lower()).lstrip('_.-') or 'dev'}` and copy "
            "its config there (`pulumi config cp`)")


@dataclass(frozen=True)
class OpenStackSettings:
    image: str
    flavor: str
    network: str
    floating_ip_pool: str
    volume_type: str | None
    availability_zone: str | None


@dataclass(frozen=True)
class AwsSettings:
    instance_type: str
    ami: str | None
    vpc_id: str | None
    subnet_id: str | None
    root_volume_size_gb: int
    data_volume_type: str
    data_volume_iops: int | None = None


@dataclass(frozen=True)
class LocalSettings:
    data_dir: str
    docker_host: str
    https_port: int
    http_port: int
    bind_address: str  # where Caddy's ports are published
    site_name: str     # the name or address people open; the certificate is issued for it


@dataclass(frozen=True)
class DataSnapshots:
    """aws: daily EBS snapshots of the data volume by the Data Lifecycle Manager."""

    keep: int  # 0: no policy
    time: str  # HH:MM UTC


@dataclass(frozen=True)
class HostSettings:
    cloud: str
    ssh_user: str
    ssh_public_key: str | None
    ssh_private_key_path: str | None
    known_hosts_file: str
    admin_cidrs: tuple[str, ...]
    existing_data_volume_id: str | None
    data_volume_size_gb: int
    bytes_per_inode: int
    allow_data_loss: bool
    nofile_limit: int
    nproc_limit: int
    docker_log_max_size: str
    docker_log_max_files: int
    prune_schedule: str
    prune_until: str
    host_generation: int = 0
    architecture: str = "amd64"  # the host's CPU: images are built for it, never the operator's
    openstack: OpenStackSettings | None = None
    aws: AwsSettings | None = None
    snapshots: DataSnapshots | None = None
    local: LocalSettings | None = None

    @property
    def data_dir(self) -> str:
        return self.local.data_dir if self.local else DATA_DIR

    @property
    def platform(self) -> str:
        """Docker build platform of every image: pulumi-docker would otherwise default to the
        GOOS/GOARCH of the machine running pulumi (pulumi-docker DockerBuild.platform docs)."""
        return f"linux/{self.architecture}"


@dataclass(frozen=True)
class NotebookImage:
    name: str
    display_name: str
    path: str  # directory under images/
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str


@dataclass(frozen=True)
class GithubSettings:
    client_id: str
    client_secret: pulumi.Output[str]
    allowed_orgs: tuple[str, ...]


@dataclass(frozen=True)
class BackupSettings:
    """Nightly restic backups. repository None: the host's default target (see Host)."""

    enabled: bool
    repository: str | None
    repository_env: pulumi.Output[dict[str, str]] | None
    time: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    check_every_days: int
    check_read_data_percent: int


@dataclass(frozen=True)
class ServiceSettings:
    domain: str | None
    acme_email: str | None
    acme_staging: bool
    auth: str
    ldap_base_dn: str
    ldap_organisation: str
    users: tuple[User, ...]
    groups: tuple[Group, ...]
    admin_users: tuple[str, ...]
    allowed_users: tuple[str, ...]
    allowed_groups: tuple[str, ...]
    blocked_users: tuple[str, ...]
    images: tuple[NotebookImage, ...]
    datasets: tuple[Dataset, ...]
    mem_limit: str  # jhc_values.memory_bytes accepts it; passed to the hub as written
    cpu_limit: str  # jhc_values.cpu_amount accepts it; passed to the hub as written
    cull_idle_timeout: int
    github: GithubSettings | None
    backup: BackupSettings
    # JupyterHub decrypts auth_state with every key and re-encrypts with the first
    previous_crypt_keys: pulumi.Output[str] | None = None

    @property
    def admins(self) -> tuple[str, ...]:
        return tuple(sorted({u.name for u in self.users if u.admin} | set(self.admin_users)))


@dataclass(frozen=True)
class Settings:
    stack: str
    host: HostSettings
    service: ServiceSettings


class _Reader:
    """Typed access to the raw config, with defaults from the key table."""

    def __init__(self, raw: Mapping[str, str], secret_keys: frozenset[str]) -> None:
        self.raw = raw
        self.secret_keys = secret_keys

    def secret(self, name: str) -> pulumi.Output[str] | None:
        """A secret value, refused when it was stored in plain text in the stack file."""
        value = self.string(name)
        if value is None:
            return None
        if name not in self.secret_keys:
            raise ConfigError(name, "is stored in plain text in the stack file",
                              f"Run `pulumi config set --secret {name} <value>`")
        return pulumi.Output.secret(value)

    def objects(self, name: str, fields: set[str]) -> list[dict[str, Any]]:
        items = self._value(name)
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ConfigError(name, f"item {index} is not an object",
                                  "Write each item as a mapping (see the README)")
            unknown = set(item) - fields
            if unknown:
                raise ConfigError(f"{name}[{index}].{sorted(unknown)[0]}", "is not a known field",
                                  f"Use only: {', '.join(sorted(fields))}")
        return items

    def _value(self, name: str) -> Any:
        key: Key = BY_NAME[name]
        if name not in self.raw:
            return key.default
        text = self.raw[name]
        if key.type == "string":
            return text
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        expected = {"integer": int, "boolean": bool, "array": list, "objects": list}[key.type]
        if expected is int and isinstance(value, bool) or not isinstance(value, expected):
            raise ConfigError(name, f"expected {_article(key.type)}, got {text!r}",
                              f"Set it with `pulumi config set {name} <{key.type}>`"
                              + (" --path" if key.type in ("array", "objects") else ""))
        return value

    def string(self, name: str) -> str | None:
        """None when unset; an empty string counts as unset (it is Pulumi.yaml's default)."""
        value = self._value(name)
        return value if value and value.strip() else None

    def required(self, name: str, why: str) -> str:
        value = self.string(name)
        if value is None:
            raise ConfigError(name, f"is required {why}", f"Run `pulumi config set {name} <value>`")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self._value(name)
        if not low <= value <= high:
            raise ConfigError(name, f"{value} is out of range {low}-{high}",
                              f"Choose a value between {low} and {high}")
        return value

    def boolean(self, name: str) -> bool:
        return self._value(name)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._value(name)
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(name, "must be a list of strings", "Quote every item")
        return tuple(value)


def _article(type_name: str) -> str:
    return {"integer": "an integer", "boolean": "true or false", "array": "a list",
            "objects": "a list of objects", "string": "a string"}[type_name]


def _check_unknown(raw: Mapping[str, str]) -> None:
    for name in raw:
        if name not in BY_NAME:
            close = difflib.get_close_matches(name, list(BY_NAME), n=1)
            fix = (f"Did you mean '{close[0]}'? Rename it" if close
                   else "Remove it (see the README's config reference)")
            raise ConfigError(name, "is not a setting of this project", fix)


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


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ConfigError(key, f"{value!r} is not a valid name",
                          "Use lower-case letters, digits, '-' and '_', starting with a letter")
    if value in RESERVED:
        raise ConfigError(key, f"{value!r} is reserved", "Choose another name")
    return value


def _unique(key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(key, f"{name!r} is declared twice", "Keep one entry per name")
        seen.add(name)


def _explicit_id(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value < 2**31:
        raise ConfigError(key, f"{value!r} is not an id between 1000 and 2147483647",
                          "Give a whole number, or leave it out to have one assigned")
    return value


def _groups(r: _Reader) -> tuple[Group, ...]:
    items = r.objects("groups", {"name", "gid"})
    names = [_name(f"groups[{i}].name", item.get("name")) for i, item in enumerate(items)]
    _unique("groups", names)
    ids, clash = assign_ids(
        ((n, _explicit_id(f"groups[{i}].gid", items[i].get("gid"))) for i, n in enumerate(names)),
        GID_BASE)
    if clash:
        raise ConfigError("groups", f"{clash[0]!r} and {clash[1]!r} get the same gid",
                          f"Give {clash[1]!r} an explicit gid")
    return tuple(Group(n, ids[n]) for n in names)


def _users(r: _Reader, groups: tuple[Group, ...]) -> tuple[User, ...]:
    items = r.objects("users", {"name", "fullName", "email", "groups", "admin", "uid", "password"})
    names = [_name(f"users[{i}].name", item.get("name")) for i, item in enumerate(items)]
    _unique("users", names)
    # Only explicit uids are decided here; the others are assigned where they are remembered
    # (LDAP's reconcile, or the hub's uid registry for GitHub logins), free of collisions.
    ids: dict[str, int | None] = {}
    owner: dict[int, str] = {}
    for i, name in enumerate(names):
        ids[name] = uid = _explicit_id(f"users[{i}].uid", items[i].get("uid"))
        if uid is not None and uid in owner:
            raise ConfigError(f"users[{i}].uid", f"{owner[uid]!r} and {name!r} declare uid {uid}",
                              f"Keep {owner[uid]!r}'s (it owns files); remove {name!r}'s to "
                              "have one assigned")
        if uid is not None:
            owner[uid] = name
    known = {g.name for g in groups}
    users = []
    for i, (name, item) in enumerate(zip(names, items, strict=True)):
        member_of = item.get("groups", [])
        if not isinstance(member_of, list) or not all(isinstance(g, str) for g in member_of):
            raise ConfigError(f"users[{i}].groups", "must be a list of group names",
                              "Write groups: [name, ...]")
        for group in member_of:
            if group not in known:
                raise ConfigError(f"users[{i}].groups", f"unknown group {group!r}",
                                  "Declare it under `groups` first")
        email = item.get("email")
        if email is not None and not (isinstance(email, str)
                                      and re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email)):
            raise ConfigError(f"users[{i}].email", f"{email!r} is not an e-mail address",
                              "Write it as name@example.org or leave it out")
        admin = item.get("admin", False)
        if not isinstance(admin, bool):
            raise ConfigError(f"users[{i}].admin", "must be true or false", "Write admin: true")
        password = item.get("password")
        if password is not None:
            if "users" not in r.secret_keys:
                raise ConfigError(f"users[{i}].password", "is stored in plain text",
                                  f"Run `pulumi config set --secret --path 'users[{i}].password'`")
            if not isinstance(password, str) or len(password) < 12:
                raise ConfigError(f"users[{i}].password", "is shorter than 12 characters",
                                  "Choose a longer password, or leave it out to have one generated")
        full_name = item.get("fullName", name)
        if not isinstance(full_name, str) or not full_name.strip():
            raise ConfigError(f"users[{i}].fullName", "must be a non-empty string", "Fix or remove it")
        users.append(User(name=name, uid=ids[name], full_name=full_name, email=email,
                          groups=tuple(member_of), admin=admin,
                          password=pulumi.Output.secret(password) if password else None))
    return tuple(users)


def _images(r: _Reader, groups: tuple[Group, ...]) -> tuple[NotebookImage, ...]:
    items = r.objects("images", {"name", "displayName", "path", "groups"}) or list(DEFAULT_IMAGES)
    known = {g.name for g in groups}
    images = []
    for i, item in enumerate(items):
        name = _name(f"images[{i}].name", item.get("name"))
        path = item.get("path", name)
        folder = (IMAGES_DIR / str(path)).resolve()
        if (not isinstance(path, str) or not folder.is_relative_to(IMAGES_DIR)
                or not (folder / "Dockerfile").is_file()):
            raise ConfigError(f"images[{i}].path", f"{path!r} is not a directory with a Dockerfile "
                              "under images/", "Add the directory, or fix the path")
        allowed = item.get("groups", [])
        for group in allowed:
            if group not in known:
                raise ConfigError(f"images[{i}].groups", f"unknown group {group!r}",
                                  "Declare it under `groups` first")
        images.append(NotebookImage(name, str(item.get("displayName", name)), path, tuple(allowed)))
    _unique("images", [image.name for image in images])
    return tuple(images)


def _datasets(r: _Reader, data_dir: str) -> tuple[Dataset, ...]:
    datasets = []
    for i, item in enumerate(r.objects("datasets", {"name", "path"})):
        name = _name(f"datasets[{i}].name", item.get("name"))
        path = item.get("path", f"{data_dir}/datasets/{name}")
        if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(f"datasets[{i}].path", f"{path!r} is not an absolute path",
                              "Give an absolute path on the host without '..'")
        datasets.append(Dataset(name, path))
    _unique("datasets", [d.name for d in datasets])
    return tuple(datasets)


def _login(key: str, value: str) -> str:
    """A login name as the hub normalises it (jhc_values: the one definition)."""
    try:
        login = normalize_login(value)
    except ValueError as err:
        raise ConfigError(key, str(err), "Use at most 32 lower-case letters, digits, '.', '-' "
                          "and '_', not all digits, as the hub does") from None
    if login in RESERVED:
        raise ConfigError(key, f"{login!r} is reserved", "Choose another name")
    return login


def _logins(r: _Reader, name: str) -> tuple[str, ...]:
    return tuple(_login(name, v) for v in r.strings(name))


def _service(r: _Reader, host: HostSettings) -> ServiceSettings:
    domain = r.string("domain")
    if domain and not re.match(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", domain):
        raise ConfigError("domain", f"{domain!r} is not a DNS name", "Use a name like hub.example.org")
    acme_email = r.string("acmeEmail")
    if acme_email and not domain:
        raise ConfigError("acmeEmail", "is set but domain is not",
                          "Set domain too, or remove acmeEmail to use the internal certificate")
    if acme_email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", acme_email):
        raise ConfigError("acmeEmail", f"{acme_email!r} is not an e-mail address", "Fix it")
    auth = r.string("auth")
    if auth not in ("ldap", "github"):
        raise ConfigError("auth", f"unknown method {auth!r}", "Use ldap or github")
    base_dn = r.string("ldapBaseDn")
    if not re.match(r"^dc=[a-z0-9-]+(,dc=[a-z0-9-]+)*$", base_dn):
        raise ConfigError("ldapBaseDn", f"{base_dn!r} is not a dc=...,dc=... DN",
                          "Use a value like dc=physics,dc=example,dc=org")
    groups = _groups(r)
    users = _users(r, groups)
    allowed_groups = tuple(r.strings("allowedGroups"))
    for group in allowed_groups:
        if group not in {g.name for g in groups}:
            raise ConfigError("allowedGroups", f"unknown group {group!r}", "Declare it under `groups`")
    admin_users, blocked = _logins(r, "adminUsers"), _logins(r, "blockedUsers")
    allowed_users = _logins(r, "allowedUsers")
    admins = {u.name for u in users if u.admin} | set(admin_users)
    for name in blocked:
        if name in admins:
            raise ConfigError("blockedUsers", f"{name!r} is also an admin",
                              "Remove the admin flag or the block")
    github = None
    if auth == "github":
        client_id = r.required("githubClientId", "for auth=github")
        secret = r.secret("githubClientSecret")
        if secret is None:
            raise ConfigError("githubClientSecret", "is required for auth=github",
                              "Run `pulumi config set --secret githubClientSecret <secret>`")
        orgs = tuple(r.strings("githubAllowedOrgs"))
        if not (orgs or allowed_users or admin_users):
            raise ConfigError("githubAllowedOrgs", "nobody could log in (no allow rule)",
                              "Set githubAllowedOrgs, allowedUsers or adminUsers")
        github = GithubSettings(client_id, secret, orgs)
    elif r.string("githubClientSecret") is not None:
        r.secret("githubClientSecret")  # refuse a plain-text secret even when unused
    # One definition of a memory size and a CPU amount, shared with the hub (jhc_values). The
    # hub reads 0 as "no limit"; a stack always limits each server, so 0 is refused here.
    memory, cpu = r.string("memLimit"), r.string("cpuLimit")
    try:
        if not memory_bytes(memory):
            raise ValueError("0 would let one server take all of the host's memory")
    except ValueError as err:
        raise ConfigError("memLimit", str(err), "Use a value like 512M, 1.5G or 2G") from None
    try:
        if not cpu_amount(cpu):
            raise ValueError("0 (no limit) would let one server take every core")
    except ValueError as err:
        raise ConfigError("cpuLimit", f"{cpu!r} is not a core count: {err}",
                          "Use a number of cores like 0.5 or 1.5") from None
    cull = r.integer("cullIdleTimeout", 0, 30 * 86400)
    if 0 < cull < 300:
        raise ConfigError("cullIdleTimeout", f"{cull} s would stop servers while people think",
                          "Use 0 (never) or at least 300")
    previous_keys = _previous_crypt_keys(r)
    return ServiceSettings(
        domain=domain, acme_email=acme_email, acme_staging=r.boolean("acmeStaging"),
        auth=auth, ldap_base_dn=base_dn,
        ldap_organisation=r.string("ldapOrganisation"), users=users, groups=groups,
        admin_users=admin_users, allowed_users=allowed_users, allowed_groups=allowed_groups,
        blocked_users=blocked, images=_images(r, groups), datasets=_datasets(r, host.data_dir),
        mem_limit=memory, cpu_limit=cpu, cull_idle_timeout=cull, github=github,
        backup=_backup(r, host), previous_crypt_keys=previous_keys)


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# restic backends by prefix (restic docs, "Preparing a new repository"); a bare path is local.
RESTIC_BACKENDS = ("s3:", "swift:", "b2:", "azure:", "gs:", "rest:", "sftp:", "rclone:")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _hhmm(r: _Reader, name: str) -> str:
    value = r.string(name) or ""
    if not _HHMM.match(value):
        raise ConfigError(name, f"{value!r} is not a time of day", "Use HH:MM in UTC, e.g. 02:30")
    return value


def _backup(r: _Reader, host: HostSettings) -> BackupSettings:
    repository = r.string("backupRepository")
    if repository is not None:
        repository = repository.strip()
        if not (repository.startswith(RESTIC_BACKENDS) or repository.startswith("/")):
            raise ConfigError("backupRepository", f"{repository!r} is not a restic repository",
                              "Use an absolute path or a URL starting with "
                              + ", ".join(RESTIC_BACKENDS))
        if repository.startswith("/"):
            path, data = Path(repository).resolve(), Path(host.data_dir).resolve()
            if path == data or data in path.parents or path in data.parents:
                raise ConfigError("backupRepository", f"{repository} overlaps the data directory "
                                  f"{host.data_dir}: a lost volume would take the backups along",
                                  "Choose a directory outside it (or object storage)")
    env = None
    text = r.string("backupRepositoryEnv")
    if text is not None:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
                isinstance(k, str) and _ENV_NAME.match(k) and isinstance(v, str)
                for k, v in parsed.items()):
            raise ConfigError("backupRepositoryEnv", "is not a JSON object of NAME: \"value\"",
                              'Set it like `pulumi config set --secret backupRepositoryEnv '
                              '\'{"AWS_ACCESS_KEY_ID": "...", "AWS_SECRET_ACCESS_KEY": "..."}\'`')
        r.secret("backupRepositoryEnv")  # refuses a plain-text value
        if repository is None:
            raise ConfigError("backupRepositoryEnv", "is set but backupRepository is not",
                              "Set backupRepository too, or unset backupRepositoryEnv")
        env = pulumi.Output.secret(parsed)
    keep = (r.integer("backupKeepDaily", 0, 3650), r.integer("backupKeepWeekly", 0, 520),
            r.integer("backupKeepMonthly", 0, 1200))
    if not any(keep):
        raise ConfigError("backupKeepDaily", "backupKeepDaily, backupKeepWeekly and "
                          "backupKeepMonthly are all 0", "Keep at least one snapshot, e.g. 7 daily")
    return BackupSettings(
        enabled=r.boolean("backupEnabled"), repository=repository, repository_env=env,
        time=_hhmm(r, "backupTime"), keep_daily=keep[0], keep_weekly=keep[1],
        keep_monthly=keep[2],
        check_every_days=r.integer("backupCheckEveryDays", 0, 365),
        check_read_data_percent=r.integer("backupCheckReadDataPercent", 1, 100))


def _previous_crypt_keys(r: _Reader) -> pulumi.Output[str] | None:
    """hubPreviousCryptKeys, checked as the hub checks JHC_CRYPT_KEY_FILE (jhc_hub.parse_crypt_keys)
    so the hub never refuses at start what preview accepted. Errors never echo a key."""
    raw = r.string("hubPreviousCryptKeys")
    if raw is None:
        return None
    keys = [item.strip() for item in raw.split(";") if item.strip()]
    for index, key in enumerate(keys, 1):
        if re.fullmatch(r"[0-9a-fA-F]{64}", key):
            continue
        try:
            decoded = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            decoded = b""
        if len(decoded) != 32:
            raise ConfigError("hubPreviousCryptKeys", f"key {index} is not 32 bytes hex or base64",
                              "Copy the old key exactly (admin guide, Rotate secrets)")
    secret = r.secret("hubPreviousCryptKeys")
    return secret.apply(lambda _: ";".join(keys)) if keys else None


def load_settings(raw: Mapping[str, str], stack: str,
                  secret_keys: frozenset[str] = frozenset()) -> Settings:
    """Validates the project's raw config (key without namespace → Pulumi's string form).

    secret_keys names the keys that were set with --secret (so their values may hold secrets).
    """
    _check_unknown(raw)
    if not re.match(r"^[a-z0-9][a-z0-9_.-]*$", stack):
        raise StackNameError(stack)
    r = _Reader(raw, secret_keys)
    host = _host(r, stack)
    return Settings(stack=stack, host=host, service=_service(r, host))


def raw_project_config() -> tuple[dict[str, str], frozenset[str]]:
    """The running program's config for this project (keys without the namespace) and which of
    them are secret."""
    prefix = f"{PROJECT}:"
    env = pulumi.runtime.config.get_config_env()
    merged = {**env, **pulumi.runtime.config.CONFIG.get()}
    raw = {k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}
    return raw, frozenset(k for k in raw if pulumi.runtime.config.is_config_secret(prefix + k))
