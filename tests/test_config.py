"""Every bad stack config is refused before any resource is declared, naming its key."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from components.config import ConfigError, load_settings
from components.config.keys import BY_NAME, KEYS
from harness import ROOT, stack_config
from scripts import config_reference

OPENSTACK = {
    "cloud": "openstack",
    "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA admin@example.org",
    "adminCidrs": json.dumps(["203.0.113.0/24"]),
    "openstackImage": "Ubuntu 24.04", "openstackFlavor": "m1.large",
    "openstackNetwork": "private", "openstackFloatingIpPool": "public",
}
AWS = {
    "cloud": "aws", "sshPublicKey": OPENSTACK["sshPublicKey"],
    "adminCidrs": json.dumps(["198.51.100.7/32"]), "awsInstanceType": "t3.large",
}


def refused(raw: dict[str, str], key: str, *words: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(raw, "test")
    message = str(err.value)
    assert err.value.key == key
    assert f"'jupyterhub-cloud:{key}'" in message
    for word in words:
        assert word in message
    return message


def test_valid_configs_load() -> None:
    os_ = load_settings(OPENSTACK, "test").host
    assert os_.cloud == "openstack" and os_.openstack and os_.openstack.flavor == "m1.large"
    assert os_.admin_cidrs == ("203.0.113.0/24",)
    assert os_.allow_data_loss is False and os_.data_volume_size_gb == 100
    aws = load_settings(AWS, "test").host
    assert aws.aws and aws.aws.instance_type == "t3.large" and aws.aws.ami is None
    local = load_settings({}, "test").host
    assert local.cloud == "local" and local.local and local.local.data_dir.endswith("/test")
    assert local.known_hosts_file == "~/.ssh/jupyterhub-cloud-test.known_hosts"


def test_unknown_cloud() -> None:
    refused({"cloud": "azure"}, "cloud", "openstack, aws, local")


def test_unknown_key_suggests_the_right_one() -> None:
    refused({**OPENSTACK, "dataVolumSizeGb": "50"}, "dataVolumSizeGb", "dataVolumeSizeGb")


@pytest.mark.parametrize("base", [OPENSTACK, AWS])
def test_missing_ssh_key(base: dict[str, str]) -> None:
    refused({k: v for k, v in base.items() if k != "sshPublicKey"}, "sshPublicKey",
            "pulumi config set sshPublicKey")


def test_private_key_pasted_as_public_key() -> None:
    refused({**OPENSTACK, "sshPublicKey": "-----BEGIN OPENSSH PRIVATE KEY-----"}, "sshPublicKey",
            "never the private key")


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_ssh_open_to_the_world(cidr: str) -> None:
    refused({**OPENSTACK, "adminCidrs": json.dumps(["203.0.113.0/24", cidr])}, "adminCidrs",
            "whole internet")


@pytest.mark.parametrize("cidr", ["203.0.113.0/33", "10.0.0.1/8", "example.org", ""])
def test_malformed_cidr(cidr: str) -> None:
    refused({**OPENSTACK, "adminCidrs": json.dumps([cidr])}, "adminCidrs", "not a valid CIDR")


def test_cloud_stack_needs_admin_cidrs() -> None:
    refused({**AWS, "adminCidrs": "[]"}, "adminCidrs", "required")


@pytest.mark.parametrize("size", ["9", "16385", "-1"])
def test_volume_size_out_of_range(size: str) -> None:
    refused({**OPENSTACK, "dataVolumeSizeGb": size}, "dataVolumeSizeGb", "10-16384")


def test_volume_size_not_a_number() -> None:
    refused({**OPENSTACK, "dataVolumeSizeGb": "big"}, "dataVolumeSizeGb", "an integer")


@pytest.mark.parametrize("key", ["openstackImage", "openstackFlavor", "openstackNetwork",
                                 "openstackFloatingIpPool"])
def test_openstack_requires(key: str) -> None:
    refused({k: v for k, v in OPENSTACK.items() if k != key}, key, "required for cloud=openstack")
    refused({**OPENSTACK, key: ""}, key, "required")


def test_aws_requires_instance_type() -> None:
    refused({k: v for k, v in AWS.items() if k != "awsInstanceType"}, "awsInstanceType",
            "required for cloud=aws")


def test_aws_ami_must_be_an_id() -> None:
    refused({**AWS, "awsAmi": "ubuntu-latest"}, "awsAmi", "not an AMI id")


@pytest.mark.parametrize("value", ["yes", "1", "True!", "\"true\""])
def test_data_loss_must_be_said_explicitly(value: str) -> None:
    refused({**OPENSTACK, "allowDataLoss": value}, "allowDataLoss", "true or false")


def test_data_loss_allowed_only_by_literal_true() -> None:
    assert load_settings({**OPENSTACK, "allowDataLoss": "true"}, "t").host.allow_data_loss
    assert not load_settings({**OPENSTACK, "allowDataLoss": "false"}, "t").host.allow_data_loss


def test_bytes_per_inode_power_of_two() -> None:
    refused({**OPENSTACK, "dataVolumeBytesPerInode": "3000"}, "dataVolumeBytesPerInode",
            "power of two")


def test_local_stack_stays_on_loopback_unless_told() -> None:
    local = load_settings({"cloud": "local"}, "test").host.local
    assert local is not None
    assert (local.bind_address, local.site_name) == ("127.0.0.1", "localhost")
    lan = load_settings({"cloud": "local", "localBindAddress": "192.0.2.10"}, "test").host.local
    assert lan is not None and (lan.bind_address, lan.site_name) == ("192.0.2.10", "192.0.2.10")


@pytest.mark.parametrize("address", ["lan", "192.0.2.300", "192.0.2.0/24"])
def test_local_bind_address_must_be_an_ip(address: str) -> None:
    refused({"cloud": "local", "localBindAddress": address}, "localBindAddress", "IP address")


@pytest.mark.parametrize("address", ["0.0.0.0", "::"])
def test_every_interface_needs_the_name_people_open(address: str) -> None:
    refused({"cloud": "local", "localBindAddress": address}, "localSiteName", "certificate")
    named = load_settings({"cloud": "local", "localBindAddress": address,
                           "localSiteName": "hub.lab.example.org"}, "test").host.local
    assert named is not None and named.site_name == "hub.lab.example.org"


@pytest.mark.parametrize("name", ["https://hub.example.org", "hub.example.org:8443", "a b"])
def test_local_site_name_is_a_bare_name(name: str) -> None:
    refused({"cloud": "local", "localSiteName": name}, "localSiteName", "host name")


def test_settings_are_frozen() -> None:
    settings = load_settings(OPENSTACK, "test")
    with pytest.raises(AttributeError):
        settings.host.cloud = "aws"  # type: ignore[misc]


def test_pulumi_yaml_declares_every_scalar_key_like_the_table() -> None:
    text = (ROOT / "Pulumi.yaml").read_text()
    assert text == config_reference.pulumi_yaml(text), "run scripts/config_reference.py"
    declared = yaml.safe_load(text)["config"]
    assert set(declared) == {k.name for k in KEYS if k.type != "objects"}
    for name, spec in declared.items():
        # A declared key without default is required by Pulumi for every stack.
        assert "default" in spec and spec["default"] == BY_NAME[name].default, name


def test_readme_reference_lists_every_key() -> None:
    text = (ROOT / "README.md").read_text()
    assert text == config_reference.readme(text), "run scripts/config_reference.py"
    for key in KEYS:
        assert f"| `{key.name}` |" in text


@pytest.mark.parametrize("stack", ["dev", "aws", "local"])
def test_example_stacks_load_and_hold_no_secret(stack: str) -> None:
    config = stack_config(ROOT / f"Pulumi.{stack}.yaml")
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    assert "secure:" not in text and "PRIVATE KEY" not in text
    project = {k.split(":", 1)[1]: v for k, v in config.items()
               if k.startswith("jupyterhub-cloud:")}
    assert load_settings(project, stack).host.cloud == {"dev": "openstack"}.get(stack, stack)


AWS_BASE = {"cloud": "aws", "awsInstanceType": "t3.large", "adminCidrs": '["198.51.100.7/32"]',
            "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAwsExample admin@example.org"}


@pytest.mark.parametrize("extra, key, fix", [
    ({"awsVpcId": "vpc-0123456789abcdef0"}, "awsSubnetId", "subnet of that VPC"),
    ({"awsDataVolumeType": "io1"}, "awsDataVolumeIops", "pulumi config set awsDataVolumeIops"),
    ({"awsDataVolumeType": "io2"}, "awsDataVolumeIops", "pulumi config set awsDataVolumeIops"),
    ({"awsDataVolumeType": "st1", "dataVolumeSizeGb": "100"}, "dataVolumeSizeGb", "at least 125"),
    ({"awsDataVolumeType": "sc1", "dataVolumeSizeGb": "124"}, "dataVolumeSizeGb", "at least 125"),
    ({"awsInstanceType": "m7g.large", "hostArchitecture": "amd64"}, "hostArchitecture",
     "Unset hostArchitecture"),
    ({"awsDataVolumeType": "gp3", "awsDataVolumeIops": "500"}, "awsDataVolumeIops",
     "between 3000 and 16000"),
])
def test_config_the_cloud_would_refuse(extra: dict, key: str, fix: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fix)) as err:
        load_settings({**AWS_BASE, **extra}, "test")
    assert err.value.key == key


def test_cloud_limits_accept_valid_values() -> None:
    s = load_settings({**AWS_BASE, "awsDataVolumeType": "io2", "awsDataVolumeIops": "4000",
                       "awsVpcId": "vpc-1", "awsSubnetId": "subnet-1"}, "test")
    assert s.host.aws.data_volume_iops == 4000
    assert load_settings({**AWS_BASE, "awsDataVolumeType": "st1", "dataVolumeSizeGb": "125"},
                         "test").host.aws.data_volume_type == "st1"


@pytest.mark.parametrize("instance_type, arch", [
    ("m7g.large", "arm64"), ("c7gn.xlarge", "arm64"), ("t4g.small", "arm64"),
    ("m6gd.large", "arm64"), ("g5g.xlarge", "arm64"), ("t3.xlarge", "amd64"),
    ("g4dn.xlarge", "amd64"), ("m7i.large", "amd64"), ("c5n.large", "amd64")])
def test_architecture_follows_the_instance_type(instance_type: str, arch: str) -> None:
    s = load_settings({**AWS_BASE, "awsInstanceType": instance_type}, "test")
    assert s.host.architecture == arch and s.host.platform == f"linux/{arch}"


def test_stack_name_must_be_lower_case() -> None:
    from components.config import StackNameError
    with pytest.raises(StackNameError, match="pulumi stack init physics-lab"):
        load_settings({}, "Physics-Lab")
    assert load_settings({}, "physics-lab").stack == "physics-lab"
