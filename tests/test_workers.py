"""Swarm workers under Pulumi mocks: config, zero-worker invariance, network policy, the join
token, blast radius and the order in which a removed worker is drained and deleted.

Pulumi's ordering is modelled from its documented rule (pulumi docs "dependsOn": dependencies are
respected for "creation, update, and deletion"; deletes run dependents first), applied to the
dependencies the program declares.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi.runtime.rpc import is_rpc_secret

import harness
from components.config import ConfigError, load_settings
from harness import ROOT, Declared, Run, run_program

SNAPSHOTS = ROOT / "tests" / "snapshots"
TOKEN = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijkl"
AWS_WORKERS = {"awsWorkerPublicIp": True}
SERVER = {"dev": "openstack:compute/instance:Instance", "aws": "aws:ec2/instance:Instance"}


def graph(stack: str, overrides: dict | None = None) -> dict:
    import sys
    sys.path.insert(0, str(ROOT / "scripts"))
    from record_resource_graph import graph as record
    return record(stack, overrides)


# ------------------------------------------------------------------ hostWorkers 0: as before

@pytest.mark.parametrize("stack", ["dev", "aws", "local"])
def test_zero_workers_declares_the_recorded_single_host_graph(stack: str) -> None:
    """The snapshot was recorded from main before workers existed (scripts/record_resource_graph.py):
    unset and 0 both declare exactly that graph (names, types, inputs, options)."""
    recorded = json.loads((SNAPSHOTS / f"resource-graph-{stack}.json").read_text())
    unset = graph(stack)
    assert unset == recorded, "the single-host graph changed; if deliberate, rerun " \
        "scripts/record_resource_graph.py and review the diff"
    if stack != "local":
        assert graph(stack, {"hostWorkers": 0}) == recorded


# ------------------------------------------------------------------------------- config

def settings(stack: str, **overrides: object):
    raw = harness.stack_config(ROOT / f"Pulumi.{stack}.yaml")
    raw = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("jupyterhub-cloud:")}
    raw.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in overrides.items()})
    return load_settings(raw, stack)


@pytest.mark.parametrize("stack, overrides, key", [
    ("local", {"hostWorkers": 1}, "hostWorkers"),
    ("dev", {"hostWorkers": 51}, "hostWorkers"),
    ("dev", {"hostWorkers": -1}, "hostWorkers"),
    ("aws", {"hostWorkers": 1, "awsWorkerPublicIp": True, "awsWorkerInstanceType": "m7g.large"},
     "awsWorkerInstanceType"),
    ("aws", {"hostWorkers": 1}, "awsWorkerPublicIp"),
    ("aws", {"hostWorkers": 1, "awsWorkerPublicIp": True, "awsWorkerRootVolumeSizeGb": 10},
     "awsWorkerRootVolumeSizeGb"),
    ("dev", {"awsWorkerInstanceType": "t3.large"}, "awsWorkerInstanceType"),
    ("aws", {"openstackWorkerFlavor": "m1.small"}, "openstackWorkerFlavor"),
    ("dev", {"hostWorkers": 1, "datasets": [{"name": "era5", "path": "/data/era5"}]},
     "datasets[0].path"),
    ("dev", {"hostWorkers": 1, "hostWorkersJoinTokenGeneration": -1},
     "hostWorkersJoinTokenGeneration"),
    ("aws", {"hostWorkers": 1, "awsWorkerPublicIp": True, "hostWorkersJoinTokenGeneration": "x"},
     "hostWorkersJoinTokenGeneration"),
])
def test_refusals_name_the_key(stack: str, overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(stack, **overrides)
    assert err.value.key == key
    assert f"'jupyterhub-cloud:{key}'" in str(err.value)


def test_worker_sizes_default_to_the_main_host() -> None:
    assert settings("dev").host.workers is None
    assert settings("dev", hostWorkers=0).host.workers is None
    dev = settings("dev", hostWorkers=2).host.workers
    assert (dev.count, dev.size) == (2, "m1.large")
    assert settings("dev", hostWorkers=1, openstackWorkerFlavor="m1.xlarge").host.workers.size == \
        "m1.xlarge"
    aws = settings("aws", hostWorkers=3, **AWS_WORKERS).host.workers
    assert (aws.count, aws.size, aws.root_volume_size_gb, aws.public_ip) == (3, "t3.xlarge", 50, True)
    # A subnet of the operator's choice (with a NAT gateway) needs no public address.
    private = settings("aws", hostWorkers=1, awsVpcId="vpc-1", awsSubnetId="subnet-1").host
    assert private.workers.public_ip is False
    ds = settings("dev", hostWorkers=1, datasets=[{"name": "era5"}]).service.datasets
    assert ds[0].path == "/srv/jupyterhub/datasets/era5"


# ------------------------------------------------------------------- the declared workers

@pytest.fixture(scope="module")
def dev2() -> Run:
    return run_program("dev", overrides={"hostWorkers": 2})


@pytest.fixture(scope="module")
def aws2() -> Run:
    return run_program("aws", overrides={"hostWorkers": 2, **AWS_WORKERS})


def workers_of(run: Run, stack: str) -> list[Declared]:
    return sorted((r for r in run.of_type(SERVER[stack]) if "-worker-" in r.name),
                  key=lambda r: r.name)


def test_openstack_workers_private_same_image_own_group(dev2: Run) -> None:
    main = dev2.resources["jhc-server"].plain
    workers = workers_of(dev2, "dev")
    assert [w.name for w in workers] == ["jhc-worker-0-server", "jhc-worker-1-server"]
    for w in workers:
        assert w.plain["imageName"] == main["imageName"]
        assert w.plain["flavorName"] == "m1.large"
        port = w.plain["networks"][0]["port"]
        assert port.startswith("jhc-worker-") and port.endswith("-port-id")
        assert w.opts.delete_before_replace is True
        assert w.opts.replace_on_changes == ["flavor_name"]  # never resized in place undrained
    # No floating IP reaches a worker: the only association is the main host's port.
    assocs = dev2.of_type("openstack:networking/floatingIpAssociate:FloatingIpAssociate")
    assert [a.plain["portId"] for a in assocs] == ["jhc-port-id"]
    for port in dev2.of_type("openstack:networking/port:Port"):
        if "worker" in port.name:
            assert port.plain["securityGroupIds"] == ["jhc-worker-secgroup-id"]
            assert port.plain["networkId"] == dev2.resources["jhc-port"].plain["networkId"]


def test_aws_workers_without_elastic_ip_in_the_main_subnet(aws2: Run) -> None:
    main = aws2.resources["jhc-server"].plain
    for w in workers_of(aws2, "aws"):
        assert w.plain["ami"] == main["ami"] and w.plain["subnetId"] == main["subnetId"]
        assert w.plain["vpcSecurityGroupIds"] == ["jhc-worker-secgroup-id"]
        assert w.plain["metadataOptions"] == main["metadataOptions"]
        assert w.plain["rootBlockDevice"]["encrypted"] is True
        assert w.plain["userDataReplaceOnChange"] is True
        assert w.plain["associatePublicIpAddress"] is True  # as configured (default VPC)
        assert set(w.opts.replace_on_changes) == {"instance_type", "root_block_device"}
    assert [a.plain["instanceId"] for a in aws2.of_type("aws:ec2/eipAssociation:EipAssociation")] \
        == ["jhc-server-id"]
    private = run_program("aws", overrides={"hostWorkers": 1, "awsVpcId": "vpc-1",
                                            "awsSubnetId": "subnet-1"})
    assert workers_of(private, "aws")[0].plain["associatePublicIpAddress"] is False


SWARM_RULES = {  # (to, from, protocol, port): Docker's swarm ports, NFS, registry, jump SSH
    ("manager", "worker", "tcp", 2377), ("manager", "worker", "tcp", 2049),
    ("manager", "worker", "tcp", 5000), ("worker", "manager", "tcp", 22),
    *{(to, src, proto, port) for to, src in (("manager", "worker"), ("worker", "manager"),
                                              ("worker", "worker"))
      for proto, port in (("tcp", 7946), ("udp", 7946), ("udp", 4789), ("esp", None))}}
GROUP = {"dev": {"jhc-secgroup-id": "manager", "jhc-worker-secgroup-id": "worker"},
         "aws": {"jhc-secgroup-id": "manager", "jhc-worker-secgroup-id": "worker"}}


def node_rules(run: Run, stack: str) -> set[tuple]:
    found = set()
    if stack == "dev":
        for r in run.of_type("openstack:networking/secGroupRule:SecGroupRule"):
            p = r.plain
            if p["direction"] != "ingress" or "remoteGroupId" not in p:
                continue
            assert "remoteIpPrefix" not in p, r.name
            found.add((GROUP[stack][p["securityGroupId"]], GROUP[stack][p["remoteGroupId"]],
                       p["protocol"], p.get("portRangeMin")))
            assert p.get("portRangeMin") == p.get("portRangeMax")
    else:
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
            p = r.plain
            if "referencedSecurityGroupId" not in p:
                continue
            assert "cidrIpv4" not in p and "cidrIpv6" not in p, r.name
            proto = {"50": "esp"}.get(p["ipProtocol"], p["ipProtocol"])
            found.add((GROUP[stack][p["securityGroupId"]],
                       GROUP[stack][p["referencedSecurityGroupId"]], proto, p.get("fromPort")))
    return found


@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_swarm_nfs_registry_open_only_between_the_stacks_nodes(stack: str, request) -> None:
    run = request.getfixturevalue(f"{stack}2")
    assert node_rules(run, stack) == SWARM_RULES
    # Every inbound rule from a CIDR is still only SSH from the admins or the web on 80/443.
    from test_program import ingress
    for low, _, cidr in ingress_cidr_rules(run):
        assert low in (22, 80, 443), (low, cidr)
    base = run_program(stack)
    assert sorted(ingress_cidr_rules(run)) == sorted(ingress(base))


def ingress_cidr_rules(run: Run) -> list[tuple]:
    rules = []
    for r in run.of_type("openstack:networking/secGroupRule:SecGroupRule"):
        if r.plain["direction"] == "ingress" and "remoteGroupId" not in r.plain:
            rules.append((r.plain["portRangeMin"], r.plain["portRangeMax"],
                          r.plain["remoteIpPrefix"]))
    for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        if "referencedSecurityGroupId" not in r.plain:
            rules.append((r.plain["fromPort"], r.plain["toPort"],
                          r.plain.get("cidrIpv4") or r.plain.get("cidrIpv6")))
    return rules


def test_worker_user_data_names_the_manager_private_address(dev2: Run, aws2: Run) -> None:
    for run, stack, address in ((dev2, "dev", harness.private_address("jhc-port")),
                                (aws2, "aws", harness.private_address("jhc-server"))):
        for w in workers_of(run, stack):
            text = w.plain["userData"]
            assert f"{address}:/srv/jupyterhub/homes /srv/jupyterhub/homes nfs4" in text
            assert f'"insecure-registries": ["{address}:5000"]' in text
            assert "SWMTKN" not in text
        swarm = run.resources["jhc-swarm"].plain["environment"]
        assert swarm["JHC_ADVERTISE_ADDR"] == address
        exports = run.resources["jhc-nfs"].plain["environment"]["JHC_EXPORTS"]
        for w in workers_of(run, stack):
            ip = harness.private_address(w.name if stack == "aws" else
                                         w.name.replace("-server", "-port"))
            assert f"{ip}(rw,sync,root_squash" in exports and f"{ip}(ro," in exports


# --------------------------------------------------------------------------- the join token

@pytest.fixture(scope="module")
def with_token() -> Run:
    """The swarm step's stdout set to a token-like value, to follow where it goes."""
    saved = dict(harness.COMPUTED["command:local:Command"])
    harness.COMPUTED["command:local:Command"]["stdout"] = TOKEN
    try:
        return run_program("dev", overrides={"hostWorkers": 2}, fresh=True)
    finally:
        harness.COMPUTED["command:local:Command"] = saved


def test_join_token_is_secret_on_stdin_only(with_token: Run) -> None:
    swarm = with_token.resources["jhc-swarm"]
    assert swarm.opts.additional_secret_outputs == ["stdout"]
    assert swarm.plain["logging"] == "stderr"  # stdout (the token) is not logged
    holders = []
    for r in with_token:
        if TOKEN in json.dumps(r.plain):
            holders.append(r.name)
            assert is_rpc_secret(r.inputs["stdin"]), r.name
            assert TOKEN not in json.dumps({k: v for k, v in r.plain.items() if k != "stdin"})
    assert sorted(holders) == ["jhc-worker-0-join", "jhc-worker-1-join"]
    for name, value in with_token.outputs.items():
        assert TOKEN not in json.dumps(value, default=str) or name in with_token.secret_outputs


# ----------------------------------------------------------------------------- blast radius

STATEFUL = ("jhc-postgres", "jhc-ldap")


def main_host_and_state(run: Run, platform: bool = False) -> dict[str, tuple]:
    """The host layer and the stateful services (or, with `platform`, everything) but the
    workers' resources and the swarm/NFS steps, with recorded options. The first worker switches
    the platform to Swarm mode (hub, proxy, images, a registry and an overlay change or appear);
    the main VM, its volume, IP and Postgres/LDAP never do."""
    skip = ("jhc-worker-", "jhc-swarm", "jhc-nfs")
    found = {}
    for r in run:
        if r.name.startswith(skip):
            continue
        service = r.type.startswith(("docker:", "command:")) or r.name.startswith("jhc-cluster")
        if service and not platform and not r.name.startswith(STATEFUL):
            continue
        o = r.opts
        found[r.name] = (r.type, r.plain, None if o is None else (
            o.protect, o.retain_on_delete, o.ignore_changes, o.delete_before_replace,
            sorted(d._name for d in (o.depends_on or []))))
    return found


@pytest.mark.parametrize("stack, extra", [("dev", {}), ("aws", AWS_WORKERS)])
def test_adding_resizing_removing_workers_never_touches_the_main_host(stack: str, extra) -> None:
    size = {"openstackWorkerFlavor": "m1.xlarge"} if stack == "dev" else {
        "awsWorkerInstanceType": "t3.2xlarge", "awsWorkerRootVolumeSizeGb": 80}
    base = main_host_and_state(run_program(stack))
    assert "jhc-server" in base and "jhc-data" in base and "jhc-ip" in base
    assert all(name in base for name in STATEFUL)
    variants = {"1": {"hostWorkers": 1, **extra}, "2": {"hostWorkers": 2, **extra},
                "resized": {"hostWorkers": 2, **size, **extra}}
    runs = {k: run_program(stack, overrides=v) for k, v in variants.items()}
    for label, run in runs.items():
        now = main_host_and_state(run)
        assert {k: v for k, v in now.items() if k in base} == base, label
        assert set(now) == set(base), f"{label}: {sorted(set(now) - set(base))}"
    # Once in Swarm mode, more workers or other sizes leave the whole platform as it is.
    platform = main_host_and_state(runs["1"], platform=True)
    assert any(name.startswith("jhc-cluster") for name in platform)
    for label in ("2", "resized"):
        assert main_host_and_state(runs[label], platform=True) == platform, label
    # Resizing changes the worker servers' size and nothing else.
    two, resized = runs["2"], runs["resized"]
    changed = {r.name for r in resized if r.plain != two.resources[r.name].plain}
    assert changed == {"jhc-worker-0-server", "jhc-worker-1-server"}
    # Removing a worker removes its resources; of the others only the export list changes.
    one = runs["1"]
    assert set(two.resources) - set(one.resources) == {
        "jhc-worker-1-port", "jhc-worker-1-server", "jhc-worker-1-ready", "jhc-worker-1-join"} - (
        {"jhc-worker-1-port"} if stack == "aws" else set())
    changed = {r.name for r in one if r.plain != two.resources[r.name].plain}
    assert changed == {"jhc-nfs"}


def test_a_new_join_token_generation_reruns_only_the_swarm_step() -> None:
    """Raising hostWorkersJoinTokenGeneration is an update of the swarm step (its create runs
    again and rotates the token: tests/integration/test_swarm_steps.py), never a replacement,
    which would dissolve the swarm; nothing else changes. Generation 0 adds no input."""
    two = run_program("dev", overrides={"hostWorkers": 2})
    rotated = run_program("dev", overrides={"hostWorkers": 2, "hostWorkersJoinTokenGeneration": 3})
    assert set(rotated.resources) == set(two.resources)
    changed = {r.name for r in rotated if r.plain != two.resources[r.name].plain}
    assert changed == {"jhc-swarm"}
    before, after = two.resources["jhc-swarm"], rotated.resources["jhc-swarm"]
    assert "JHC_JOIN_TOKEN_GENERATION" not in before.plain["environment"]
    assert after.plain["environment"] == {**before.plain["environment"],
                                          "JHC_JOIN_TOKEN_GENERATION": "3"}
    # pulumi-command replaces a Command only for its triggers (its SDK sets
    # replace_on_changes=["triggers[*]"]), and this one has none
    assert not after.plain.get("triggers")
    assert set(after.opts.replace_on_changes or ()) <= {"triggers[*]"}
    assert not after.opts.delete_before_replace


def depends(run: Run, r: Declared) -> set[str]:
    from test_lifecycle import depends as lifecycle_depends
    return lifecycle_depends(run, r)


def delete_order(run: Run, deleted: set[str]) -> list[str]:
    """Dependents before dependencies among the deleted resources."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in depends(run, run.resources[name]) & deleted:
            visit(dep)
        order.append(name)

    for name in sorted(deleted):
        visit(name)
    return list(reversed(order))


@pytest.mark.parametrize("stack, extra", [("dev", {}), ("aws", AWS_WORKERS)])
def test_a_removed_worker_is_drained_before_its_vm_goes(stack: str, extra) -> None:
    two = run_program(stack, overrides={"hostWorkers": 2, **extra})
    one = run_program(stack, overrides={"hostWorkers": 1, **extra})
    gone = set(two.resources) - set(one.resources)
    order = delete_order(two, gone)
    assert order.index("jhc-worker-1-join") < order.index("jhc-worker-1-server"), order
    join = two.resources["jhc-worker-1-join"].plain
    assert join["delete"] == "bash scripts/swarm-leave.sh"
    assert join["triggers"] == ["jhc-worker-1-server-id"]  # a new VM joins again
    env = join["environment"]
    assert env["JHC_WORKER_TARGET"].startswith("ubuntu@10.")
    # The drain talks to the manager through its pinned host key, the worker through the manager.
    assert env["JHC_MANAGER_TARGET"] == two.resources["jhc-ready"].plain["environment"][
        "JHC_SSH_TARGET"]
    assert "known_hosts.d/jhc-worker-1-server-id" in env["JHC_WORKER_SSH_OPTS"]


def test_workers_are_reached_through_the_main_host(dev2: Run) -> None:
    ready = dev2.resources["jhc-worker-0-ready"].plain
    env = ready["environment"]
    assert ready["create"] == "bash scripts/wait-host-ready.sh"
    assert env["JHC_JUMP_TARGET"] == "ubuntu@198.51.100.10"
    assert env["JHC_SSH_TARGET"] == f"ubuntu@{harness.private_address('jhc-worker-0-port')}"
    assert dev2.outputs["workerSshCommands"] == [
        f"ssh -J ubuntu@198.51.100.10 ubuntu@{harness.private_address(f'jhc-worker-{i}-port')}"
        for i in range(2)]
    assert "workerSshCommands" not in run_program("dev").outputs


def test_wait_script_builds_the_jump(tmp_path: Path) -> None:
    """wait-host-ready.sh with a recording ssh: the jump is a ProxyCommand with the main host's
    options, %-tokens escaped (ssh expands them there)."""
    import os
    import subprocess
    log = tmp_path / "argv"
    fake = tmp_path / "ssh"
    fake.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" >> {log}\necho ---- >> {log}\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}",
           "JHC_SSH_TARGET": "ubuntu@10.0.0.7", "JHC_SSH_OPTS": "-o BatchMode=yes",
           "JHC_JUMP_TARGET": "ubuntu@198.51.100.10",
           "JHC_JUMP_SSH_OPTS": "-o ControlPath=~/.ssh/jhc-ab-%C -o BatchMode=yes"}
    run = subprocess.run(["bash", str(ROOT / "scripts/wait-host-ready.sh")], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    first = log.read_text().split("----\n")[0].splitlines()
    assert first[:4] == ["-o", "BatchMode=yes", "-o", "ProxyCommand=ssh -o ControlPath="
                         "~/.ssh/jhc-ab-%%C -o BatchMode=yes -W %h:%p ubuntu@198.51.100.10"]
    assert first[4] == "ubuntu@10.0.0.7"
