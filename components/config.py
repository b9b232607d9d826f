"""Stack config → typed, frozen settings, validated before any resource is declared.

The loader is pure (it takes the raw key → string mapping Pulumi hands the program) so every refusal
can be tested without a Pulumi engine. Every error names the config key and says what to do.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.keys import BY_NAME, Key

PROJECT = "jupyterhub-cloud"
CLOUDS = ("openstack", "aws", "local")
DATA_DIR = "/srv/jupyterhub"


class ConfigError(pulumi.RunError):
    """A stack config value is wrong; pulumi prints the message without a traceback."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        self.key = key
        super().__init__(f"config key '{PROJECT}:{key}': {problem}. {fix}")


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


@dataclass(frozen=True)
class LocalSettings:
    data_dir: str
    docker_host: str


@dataclass(frozen=True)
class HostSettings:
    cloud: str
    ssh_user: str
    ssh_public_key: str | None
    ssh_private_key_path: str | None
    known_hosts_file: str
    admin_cidrs: tuple[str, ...]
    data_volume_size_gb: int
    bytes_per_inode: int
    allow_data_loss: bool
    nofile_limit: int
    nproc_limit: int
    docker_log_max_size: str
    docker_log_max_files: int
    prune_schedule: str
    prune_until: str
    openstack: OpenStackSettings | None = None
    aws: AwsSettings | None = None
    local: LocalSettings | None = None

    @property
    def data_dir(self) -> str:
        return self.local.data_dir if self.local else DATA_DIR


@dataclass(frozen=True)
class Settings:
    stack: str
    host: HostSettings


class _Reader:
    """Typed access to the raw config, with defaults from the key table."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw

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
        volume_type = r.string("awsDataVolumeType")
        if volume_type not in ("gp3", "gp2", "io1", "io2", "st1"):
            raise ConfigError("awsDataVolumeType", f"unsupported type {volume_type!r}",
                              "Use gp3, gp2, io1, io2 or st1")
        settings["aws"] = AwsSettings(
            instance_type=r.required("awsInstanceType", "for cloud=aws"), ami=ami,
            vpc_id=r.string("awsVpcId"), subnet_id=r.string("awsSubnetId"),
            root_volume_size_gb=r.integer("awsRootVolumeSizeGb", 8, 1024),
            data_volume_type=volume_type)
    else:
        data_dir = r.string("localDataDir") or f"~/.local/share/{PROJECT}/{stack}"
        settings["local"] = LocalSettings(data_dir=str(Path(os.path.expanduser(data_dir))),
                                          docker_host=r.string("localDockerHost"))
    return HostSettings(
        cloud=cloud, ssh_user=r.string("sshUser"), ssh_public_key=public_key,
        ssh_private_key_path=r.string("sshPrivateKeyPath"), known_hosts_file=known_hosts,
        admin_cidrs=cidrs, data_volume_size_gb=r.integer("dataVolumeSizeGb", 10, 16384),
        bytes_per_inode=bytes_per_inode, allow_data_loss=r.boolean("allowDataLoss"),
        nofile_limit=r.integer("hostNofileLimit", 1024, 16777216),
        nproc_limit=r.integer("hostNprocLimit", 1024, 4194304),
        docker_log_max_size=r.string("dockerLogMaxSize"),
        docker_log_max_files=r.integer("dockerLogMaxFiles", 1, 100),
        prune_schedule=r.string("pruneSchedule"), prune_until=r.string("pruneUntil"), **settings)


def load_settings(raw: Mapping[str, str], stack: str) -> Settings:
    """Validates the project's raw config (key without namespace → Pulumi's string form)."""
    _check_unknown(raw)
    r = _Reader(raw)
    return Settings(stack=stack, host=_host(r, stack))


def raw_project_config() -> dict[str, str]:
    """The running program's config for this project, keys without the namespace."""
    prefix = f"{PROJECT}:"
    env = pulumi.runtime.config.get_config_env()
    merged = {**env, **pulumi.runtime.config.CONFIG.get()}
    return {k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}
