"""The whole program under Pulumi mocks, for each example stack: what it declares, and how."""

from __future__ import annotations

import json
import subprocess

import pytest

from components.config import ConfigError
from harness import Run, run_program

SSH_RULE_PORTS = {22}
PUBLIC_PORTS = {80, 443}


@pytest.fixture(scope="module")
def dev() -> Run:
    return run_program("dev")


@pytest.fixture(scope="module")
def aws() -> Run:
    return run_program("aws")


@pytest.fixture(scope="module")
def local() -> Run:
    return run_program("local")


def ingress(run: Run) -> list[tuple[int, int, str]]:
    rules = []
    for r in run.of_type("openstack:networking/secGroupRule:SecGroupRule"):
        if r.plain["direction"] == "ingress":
            rules.append((r.plain["portRangeMin"], r.plain["portRangeMax"],
                          r.plain["remoteIpPrefix"]))
    for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        cidr = r.plain.get("cidrIpv4") or r.plain.get("cidrIpv6")
        rules.append((r.plain["fromPort"], r.plain["toPort"], cidr))
    return rules


@pytest.mark.parametrize("stack, admin", [("dev", {"203.0.113.0/24", "2001:db8:10::/48"}),
                                          ("aws", {"198.51.100.7/32"})])
def test_inbound_only_ssh_from_admins_and_web(stack: str, admin: set[str], request) -> None:
    rules = ingress(request.getfixturevalue(stack))
    assert rules, "no ingress rules declared"
    for low, high, cidr in rules:
        assert low == high and low in SSH_RULE_PORTS | PUBLIC_PORTS, (low, high, cidr)
        if low == 22:
            assert cidr in admin
    assert {cidr for port, _, cidr in rules if port == 22} == admin
    for port in PUBLIC_PORTS:
        assert {cidr for p, _, cidr in rules if p == port} == {"0.0.0.0/0", "::/0"}


def test_openstack_group_has_no_default_rules_but_egress(dev: Run) -> None:
    assert dev.one("openstack:networking/secGroup:SecGroup").plain["deleteDefaultRules"] is True
    egress = [r.plain for r in dev.of_type("openstack:networking/secGroupRule:SecGroupRule")
              if r.plain["direction"] == "egress"]
    assert {e["ethertype"] for e in egress} == {"IPv4", "IPv6"}


def test_aws_egress_is_separate_rules(aws: Run) -> None:
    group = aws.one("aws:ec2/securityGroup:SecurityGroup").plain
    assert "ingress" not in group and "egress" not in group
    assert len(aws.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")) == 2


def test_openstack_host_shape(dev: Run) -> None:
    server = dev.one("openstack:compute/instance:Instance").plain
    assert server["imageName"] == "Ubuntu 24.04" and server["flavorName"] == "m1.large"
    port = dev.one("openstack:networking/port:Port").plain
    assert server["networks"] == [{"port": "jhc-port-id"}]
    assert port["networkId"] == "net-0001" and port["securityGroupIds"] == ["jhc-secgroup-id"]
    volume = dev.one("openstack:blockstorage/volume:Volume").plain
    assert volume["size"] == 200
    attach = dev.one("openstack:compute/volumeAttach:VolumeAttach").plain
    assert attach == {"instanceId": "jhc-server-id", "volumeId": "jhc-data-id"}
    fip = dev.one("openstack:networking/floatingIp:FloatingIp").plain
    assert fip["pool"] == "public"
    assoc = dev.one("openstack:networking/floatingIpAssociate:FloatingIpAssociate").plain
    assert assoc == {"floatingIp": "198.51.100.10", "portId": "jhc-port-id"}


def test_aws_instance_hardening(aws: Run) -> None:
    instance = aws.one("aws:ec2/instance:Instance").plain
    assert instance["metadataOptions"]["httpTokens"] == "required"
    assert instance["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert instance["rootBlockDevice"]["encrypted"] is True
    assert instance["ami"] == "ami-0a1b2c3d4e5f60718"
    assert instance["vpcSecurityGroupIds"] == ["jhc-secgroup-id"]
    assert "securityGroups" not in instance


def test_aws_data_volume_encrypted_in_the_instance_zone(aws: Run) -> None:
    volume = aws.one("aws:ebs/volume:Volume").plain
    assert volume["encrypted"] is True and volume["finalSnapshot"] is True
    assert volume["availabilityZone"] == "eu-central-1a"
    instance = aws.one("aws:ec2/instance:Instance").plain
    assert instance["subnetId"] == "subnet-0a"  # the sorted first default subnet
    assert aws.one("aws:ec2/eip:Eip").plain["domain"] == "vpc"


def test_aws_ami_lookup_when_not_pinned() -> None:
    run = run_program("aws", remove=("awsAmi",))
    assert run.one("aws:ec2/instance:Instance").plain["ami"] == "ami-0f00d00d00d00d00d"
    assert "ami" in run.one("aws:ec2/instance:Instance").opts.ignore_changes


@pytest.mark.parametrize("stack, volume, ip", [
    ("dev", "openstack:blockstorage/volume:Volume", "openstack:networking/floatingIp:FloatingIp"),
    ("aws", "aws:ebs/volume:Volume", "aws:ec2/eip:Eip")])
def test_data_volume_and_ip_protected_and_retained(stack: str, volume: str, ip: str,
                                                    request) -> None:
    run = request.getfixturevalue(stack)
    for typ in (volume, ip):
        opts = run.one(typ).opts
        assert opts.protect is True and opts.retain_on_delete is True, typ
    loose = run_program(stack, overrides={"allowDataLoss": True})
    for typ in (volume, ip):
        opts = loose.one(typ).opts
        assert not opts.protect and not opts.retain_on_delete, typ


@pytest.mark.parametrize("stack, typ, ignored", [
    ("dev", "openstack:compute/instance:Instance", {"image_name", "image_id", "user_data"}),
    ("aws", "aws:ec2/instance:Instance", {"ami", "user_data", "user_data_base64"})])
def test_instance_ignores_image_and_user_data_drift(stack, typ, ignored, request) -> None:
    run = request.getfixturevalue(stack)
    assert ignored <= set(run.one(typ).opts.ignore_changes)
    assert not run.one(typ).opts.protect  # the root disk is disposable


def user_data(run: Run) -> str:
    for typ in ("openstack:compute/instance:Instance", "aws:ec2/instance:Instance"):
        found = run.of_type(typ)
        if found:
            return found[0].plain["userData"]
    raise AssertionError("no instance")


@pytest.mark.needs("cloud-init")
@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_user_data_passes_the_real_cloud_init_schema(stack, request, tmp_path) -> None:
    path = tmp_path / "user-data"
    path.write_text(user_data(request.getfixturevalue(stack)))
    result = subprocess.run(["cloud-init", "schema", "--config-file", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_user_data_names_the_volume_device(dev: Run, aws: Run) -> None:
    assert "/dev/disk/by-id/virtio-jhc-data-id" in user_data(dev)
    assert "/dev/sdf" in user_data(aws)


def test_host_ready_waits_for_volume_and_ip(dev: Run) -> None:
    ready = dev.resources["jhc-ready"]
    names = {r._name for r in ready.opts.depends_on}
    assert names == {"jhc-data-attach", "jhc-ip-assoc"}
    env = ready.plain["environment"]
    assert env["JHC_SSH_TARGET"] == "ubuntu@198.51.100.10"
    assert "StrictHostKeyChecking=accept-new" in env["JHC_SSH_OPTS"]
    assert ready.plain["create"] == "bash scripts/wait-host-ready.sh"


@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_docker_provider_over_ssh_with_pinned_host_keys(stack, request) -> None:
    provider = request.getfixturevalue(stack).one("pulumi:providers:docker").plain
    assert provider["host"].startswith("ssh://ubuntu@198.51.100.")
    opts = json.loads(provider["sshOpts"])
    assert "StrictHostKeyChecking=accept-new" in opts
    # Pinned per server: a new server (new id) gets a fresh file, the same server never does.
    assert (f"UserKnownHostsFile=~/.ssh/jupyterhub-cloud-{stack}.known_hosts.d/jhc-server-id"
            in opts)
    assert "StrictHostKeyChecking=no" not in opts


def test_private_key_path_goes_to_ssh(dev: Run) -> None:
    run = run_program("dev", overrides={"sshPrivateKeyPath": "~/.ssh/lab"})
    opts = json.loads(run.one("pulumi:providers:docker").plain["sshOpts"])
    assert opts[opts.index("-i") + 1] == "~/.ssh/lab"


def test_local_stack_uses_the_local_engine(local: Run) -> None:
    assert not [r for r in local if r.type.startswith(("openstack:", "aws:"))]
    provider = local.one("pulumi:providers:docker").plain
    assert provider["host"] == "unix:///var/run/docker.sock" and "sshOpts" not in provider
    assert "docker version" in local.resources["jhc-ready"].plain["create"]


@pytest.mark.parametrize("stack", ["dev", "aws", "local"])
def test_outputs(stack, request) -> None:
    run = request.getfixturevalue(stack)
    assert {"publicAddress", "dockerHost", "dataVolumeId"} <= set(run.outputs)
    if stack != "local":
        assert run.outputs["sshCommand"] == f"ssh ubuntu@{run.outputs['publicAddress']}"
        assert run.outputs["dataVolumeId"] == "jhc-data-id"


def test_bad_config_fails_before_any_resource() -> None:
    with pytest.raises(ConfigError, match="adminCidrs"):
        run_program("dev", overrides={"adminCidrs": ["0.0.0.0/0"]})


@pytest.mark.parametrize("stack, typ", [("dev", "openstack:blockstorage/volume:Volume"),
                                        ("aws", "aws:ebs/volume:Volume")])
def test_existing_data_volume_is_read_not_created(stack: str, typ: str) -> None:
    run = run_program(stack, overrides={"existingDataVolumeId": "vol-0123456789abcdef0"})
    volume = run.resources["jhc-data"]
    assert volume.opts.id == "vol-0123456789abcdef0"  # a read (`.get`), never created or deleted
    assert volume.type == typ
    attach = next(r for r in run if r.name == "jhc-data-attach")
    assert attach.plain["volumeId"] == "vol-0123456789abcdef0"
