"""Day 2 under Pulumi mocks: host roll, known_hosts per server, engine identity, platform, SSH.

Pulumi's ordering is modelled from its documented rules, each cited where used; the program's
part (options, dependencies, inputs) is what the mocks record.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from unittest import mock

import pulumi
import pytest

from harness import ROOT, Declared, Run, run_program

SERVER = {"dev": "openstack:compute/instance:Instance", "aws": "aws:ec2/instance:Instance"}
ATTACH = {"dev": "openstack:compute/volumeAttach:VolumeAttach",
          "aws": "aws:ec2/volumeAttachment:VolumeAttachment"}


def depends(run: Run, r: Declared) -> set[str]:
    """Names r depends on: explicit depends_on plus inputs holding another resource's id."""
    names = {d._name for d in (r.opts.depends_on or [])} if r.opts else set()
    text = json.dumps(r.plain)
    names |= {o.name for o in run if o.custom and f'"{o.name}-id"' in text}
    return names - {r.name}


def roll_steps(run: Run, server: str) -> list[str]:
    """The steps Pulumi runs when `server` is replaced with deleteBeforeReplace.

    Rule (pulumi/pulumi's DBR lifecycle tests, "The changing of a.state causes base to be DBR
    replaced ... 1. DeleteReplacement Dependent ... 3. DeleteReplacement Base 4. Replace Base 5.
    CreateReplacement Base 6. ... CreateReplacement Dependent"): the dependents that are replaced
    with it (their inputs hold its id) are deleted first, dependents before dependencies; then the
    base is deleted and created; then the dependents are created in dependency order.
    """
    replaced = {server}
    changed = True
    while changed:
        changed = False
        for r in run:
            if r.custom and r.name not in replaced and depends(run, r) & replaced:
                replaced.add(r.name)
                changed = True
    order: list[str] = []  # dependency order among the replaced resources

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in depends(run, run.resources[name]) & replaced:
            visit(dep)
        order.append(name)

    for name in sorted(replaced):
        visit(name)
    assert run.resources[server].opts.delete_before_replace, "the server is not DBR"
    return [f"delete {n}" for n in reversed(order)] + [f"create {n}" for n in order]


def rolled(stack: str) -> Run:
    """A stack rolled to a new host generation (the AWS one looks its AMI up)."""
    return run_program(stack, overrides={"hostGeneration": 2}, remove=("awsAmi",))


@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_roll_order_stop_unmount_detach_delete_create_attach(stack: str) -> None:
    run = rolled(stack)
    steps = [s for s in roll_steps(run, "jhc-server") if not s.endswith("jhc-ip-assoc")]
    assert steps == ["delete jhc-ready", "delete jhc-data-attach", "delete jhc-server",
                     "create jhc-server", "create jhc-data-attach", "create jhc-ready"]
    ready = run.resources["jhc-ready"].plain
    # Deleting the ready step stops the services and unmounts (see test_retire_* below).
    assert ready["delete"] == "bash scripts/retire-host.sh"
    assert ready["environment"]["JHC_DATA_DIR"] == "/srv/jupyterhub"
    assert run.one(ATTACH[stack]).opts.delete_before_replace is True


@pytest.mark.parametrize("stack", ["dev", "aws"])
def test_new_generation_gets_the_current_image_and_bootstrap(stack: str) -> None:
    old, new = run_program(stack), rolled(stack)
    server = new.one(SERVER[stack])
    # No ignore_changes left on the roll's inputs: the engine would reuse the old values on
    # replacement (pulumi/pulumi#2657: "replaces the values of input properties in the goal
    # state with old inputs").
    ignored = set(server.opts.ignore_changes or [])
    assert not ignored & {"ami", "user_data", "image_name"}
    latch = new.resources["jhc-pin-g2"]
    assert latch.opts.ignore_changes == ["keepers"]
    key, image = ("ami", "ami-0f00d00d00d00d00d") if stack == "aws" else ("imageName",
                                                                           "Ubuntu 24.04")
    assert server.plain[key] == latch.plain["keepers"][key if stack == "aws" else "image"] == image
    assert server.plain["userData"] == latch.plain["keepers"]["userData"]
    assert "host generation 2" in server.plain["userData"]
    assert server.plain["userData"] != old.one(SERVER[stack]).plain["userData"]
    if stack == "aws":
        assert server.plain["userDataReplaceOnChange"] is True
    # Generation 0 keeps the first deployment's behaviour.
    assert {"user_data"} <= set(old.one(SERVER[stack]).opts.ignore_changes)
    assert "jhc-pin-g0" not in old.resources


def test_roll_never_touches_volume_or_ip() -> None:
    base, new = run_program("dev"), rolled("dev")
    for name in ("jhc-data", "jhc-ip"):
        assert new.resources[name].plain == base.resources[name].plain
        assert new.resources[name].opts.protect is True


def test_known_hosts_are_pinned_per_server() -> None:
    run = run_program("dev")
    env = run.resources["jhc-ready"].plain["environment"]
    path = "~/.ssh/jupyterhub-cloud-dev.known_hosts.d/jhc-server-id"
    assert env["JHC_KNOWN_HOSTS"] == path
    assert f"UserKnownHostsFile={path}" in env["JHC_SSH_OPTS"]
    provider = json.loads(run.one("pulumi:providers:docker").plain["sshOpts"])
    assert f"UserKnownHostsFile={path}" in provider
    assert "StrictHostKeyChecking=accept-new" in provider


def test_ssh_multiplexes_and_offers_only_the_configured_key() -> None:
    run = run_program("dev", overrides={"sshPrivateKeyPath": "~/.ssh/lab"})
    opts = json.loads(run.one("pulumi:providers:docker").plain["sshOpts"])
    assert "ControlMaster=auto" in opts and "ControlPersist=60s" in opts
    control = [o for o in opts if o.startswith("ControlPath=")]
    other = json.loads(run_program("dev", overrides={"sshKnownHostsFile": "~/.ssh/other"}).one(
        "pulumi:providers:docker").plain["sshOpts"])
    assert len(control) == 1 and control[0] not in other  # one master per server
    assert len(control[0]) < 60  # unix socket paths are short
    assert opts[opts.index("-i") + 1] == "~/.ssh/lab" and "IdentitiesOnly=yes" in opts


def docker_resources(run: Run) -> list[Declared]:
    return [r for r in run if r.custom and r.type.startswith("docker:")]


def trigger(r: Declared) -> object:
    from pulumi.runtime.sync_await import _sync_await
    return _sync_await(pulumi.Output.from_input(r.final_opts.replacement_trigger).future())


def test_every_docker_resource_is_bound_to_its_engine() -> None:
    runs = {"local": run_program("local"),
            "other-socket": run_program("local", overrides={
                "localDockerHost": "unix:///run/user/1000/docker.sock"}),
            "dev": run_program("dev"), "aws": run_program("aws")}
    identities = {}
    for label, run in runs.items():
        found = docker_resources(run)
        assert len(found) > 10
        values = {trigger(r) for r in found}
        assert len(values) == 1 and None not in values, (label, values)
        identities[label] = values.pop()
    assert len(set(identities.values())) == len(identities), identities
    assert identities["dev"] == "openstack:ssh://ubuntu@198.51.100.10#jhc-data-id"


def test_same_engine_after_a_roll() -> None:
    before = {trigger(r) for r in docker_resources(run_program("dev"))}
    after = {trigger(r) for r in docker_resources(run_program("dev", overrides={
        "hostGeneration": 1}))}
    assert before == after


def test_containers_stop_gracefully() -> None:
    run = run_program("dev")
    for c in run.of_type("docker:index/container:Container"):
        assert c.plain["stopTimeout"] >= 10 and c.plain["destroyGraceSeconds"] >= 10, c.name


@pytest.mark.parametrize("name", ["DOCKER_HOST", "DOCKER_CONTEXT"])
def test_shell_cannot_choose_the_engine(name: str) -> None:
    with mock.patch.dict(os.environ, {name: "ssh://someone@elsewhere"}), \
            pytest.raises(pulumi.RunError, match=f"unset {name}"):
        run_program("local")


def build_platforms(run: Run) -> set[str]:
    return {r.plain["build"].get("platform") for r in run.of_type("docker:index/image:Image")}


def test_images_are_built_for_the_host_platform() -> None:
    assert build_platforms(run_program("dev")) == {"linux/amd64"}
    assert build_platforms(run_program("aws")) == {"linux/amd64"}
    graviton = run_program("aws", overrides={"awsInstanceType": "m7g.large"}, remove=("awsAmi",))
    assert build_platforms(graviton) == {"linux/arm64"}
    assert build_platforms(run_program("dev", overrides={"hostArchitecture": "arm64"})) == {
        "linux/arm64"}


def test_destroy_removes_user_servers_before_the_network() -> None:
    run = run_program("dev")
    cleanup = run.resources["jhc-user-server-cleanup"]
    assert cleanup.plain["delete"] == "bash scripts/remove-user-servers.sh"
    assert "create" not in cleanup.plain
    env = cleanup.plain["environment"]
    assert env["JHC_NETWORK"] == "jhc-dev-frontend"
    assert env["JHC_DOCKER_HOST"] == "ssh://ubuntu@198.51.100.10"
    assert "UserKnownHostsFile=" in env["JHC_SSH_OPTS"]
    # Deleted after the hub (the hub depends on it), before the network (its input).
    assert "jhc-user-server-cleanup" in {d._name for d in run.resources[
        "jhc-hub-container"].opts.depends_on}
    assert "jhc-frontend" in depends(run, cleanup) | {
        o.name for o in run if o.custom and o.plain.get("name") == env["JHC_NETWORK"]}


# --- the retire step's script, against an ssh stub that plays the host ---

RETIRE = ROOT / "scripts" / "retire-host.sh"
STUB = """#!/usr/bin/env bash
while [[ "$1" != ubuntu@192.0.2.1 ]]; do shift; done  # drop the options
shift
echo "$*" >> "$CALLS"
case "$*" in
  *"systemctl stop"*) touch "$STATE/stopped" ;;
  *"umount"*) [[ -e "$STATE/stopped" ]] && rm -f "$STATE/mounted" ;;
  "! mountpoint"*) [[ ! -e "$STATE/mounted" ]] ;;
esac
"""


def retire(tmp_path: Path, stub: str = STUB) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (state / "mounted").touch()
    (bin_dir / "ssh").write_text(stub)
    (bin_dir / "ssh").chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    result = subprocess.run(["bash", str(RETIRE)], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                 "CALLS": str(calls), "STATE": str(state),
                                 "JHC_SSH_TARGET": "ubuntu@192.0.2.1",
                                 "JHC_SSH_OPTS": "-o BatchMode=yes",
                                 "JHC_DATA_DIR": "/srv/jupyterhub"})
    return result, calls.read_text().splitlines()


def test_retire_stops_docker_then_unmounts(tmp_path: Path) -> None:
    result, calls = retire(tmp_path)
    assert result.returncode == 0, result.stderr
    stop = next(i for i, c in enumerate(calls) if "systemctl stop" in c and "docker" in c)
    umount = next(i for i, c in enumerate(calls) if "umount" in c)
    assert stop < umount
    assert "/srv/jupyterhub" in calls[umount]


def test_retire_fails_when_the_filesystem_stays_mounted(tmp_path: Path) -> None:
    result, _ = retire(tmp_path, STUB.replace('rm -f "$STATE/mounted"', "true"))
    assert result.returncode != 0
    assert "still mounted" in result.stderr


# --- the LDAP reconcile step ---

def test_reconcile_is_a_step_that_a_failure_does_not_record_as_done() -> None:
    run = run_program("dev")
    reconcile = run.resources["jhc-ldap-reconcile"]
    # A command: a failed create is kept with initialization errors and updated (= run again) by
    # the next `pulumi up`; no `update` command, so pulumi-command's Update re-runs `create`.
    assert reconcile.type == "command:local:Command"
    assert reconcile.plain["create"] == "bash scripts/ldap-reconcile.sh"
    assert "update" not in reconcile.plain
    # Not a container whose stored exit code the program would re-read on every run.
    assert not [c for c in run.of_type("docker:index/container:Container")
                if "reconcile" in c.plain["name"]]
    assert reconcile.plain["environment"]["JHC_DOCKER_HOST"] == "ssh://ubuntu@198.51.100.10"
    assert {d._name for d in reconcile.opts.depends_on} == {"jhc-ldap-container"}


RECONCILE = ROOT / "scripts" / "ldap-reconcile.sh"
DOCKER_STUB = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$CALLS"
echo "DOCKER_HOST=$DOCKER_HOST DOCKER_CONTEXT=${DOCKER_CONTEXT:-}" >> "$CALLS"
cat > "$STDIN_COPY"
echo "reconcile: ERROR: uidNumber of bob differs" >&2
exit "$STATUS"
"""


@pytest.mark.parametrize("status", [0, 1, 3])
def test_reconcile_script_feeds_the_document_and_reports(tmp_path: Path, status: int) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER_STUB)
    (bin_dir / "docker").chmod(0o755)
    calls, stdin_copy = tmp_path / "calls", tmp_path / "stdin"
    result = subprocess.run(
        ["bash", str(RECONCILE)], input='{"users": []}', capture_output=True, text=True,
        timeout=30, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                         "CALLS": str(calls), "STDIN_COPY": str(stdin_copy),
                         "STATUS": str(status), "JHC_DOCKER_HOST": "unix:///run/engine.sock",
                         "JHC_LDAP_CONTAINER": "jhc-dev-ldap", "DOCKER_CONTEXT": "laptop"})
    assert result.returncode == status
    args = calls.read_text().splitlines()
    assert args[:3] == ["exec", "-i", "jhc-dev-ldap"]
    assert "python3 /opt/jhc/reconcile.py" in args[-2] and "umask 077" in args[-2]
    assert args[-1] == "DOCKER_HOST=unix:///run/engine.sock DOCKER_CONTEXT="  # not the shell's
    assert stdin_copy.read_text() == '{"users": []}'
    assert "uidNumber of bob differs" in result.stderr  # the tool's report is shown
    if status:
        assert "run `pulumi up` again" in result.stderr


@pytest.mark.needs("sshd", "ssh-keygen")
def test_bootstrap_raises_sshd_max_startups(tmp_path: Path) -> None:
    run = run_program("dev")
    user_data = run.one(SERVER["dev"]).plain["userData"]
    assert "MaxStartups 50:30:200" in user_data
    # The drop-in as the real sshd reads it (sshd -T prints the effective settings).
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")],
                   check=True)
    config = tmp_path / "sshd_config"
    config.write_text((ROOT / "cloud-init" / "sshd-jupyterhub-cloud.conf").read_text()
                      + f"HostKey {tmp_path / 'hk'}\n")
    result = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(config)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "maxstartups 50:30:200" in result.stdout


# --- what the state holds after a sequence of `pulumi up`s (ignoreChanges modelled) ---

def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def deployed(runs: list[Run], server: str = "jhc-server") -> list[dict]:
    """The server's inputs in the state after each run, by the engine's documented rules:

    * ignoreChanges: "Uses the program value when there is no prior state (typically the initial
      create). Uses the serialized value from the stack state for any later previews or
      updates" (pulumi docs, ignoreChanges) -- for the server and for the generation latch;
    * the server reads the latch's outputs, which are the latch's state (a RandomId's keepers).
    """
    state: dict[str, dict] = {}
    history = []
    for run in runs:
        new: dict[str, dict] = {}
        # The server last: its program inputs come from the latch's (already settled) state.
        for r in sorted((r for r in run if r.custom), key=lambda r: r.name == server):
            inputs = dict(r.plain)
            latches = [n for n in new if n.startswith("jhc-pin-g")]
            if r.name == server and latches:
                inputs.update(userData=new[latches[0]]["keepers"]["userData"],
                              ami=new[latches[0]]["keepers"]["ami"])
            for key in (r.opts.ignore_changes or []) if r.name in state else []:
                if _camel(key) in state[r.name]:
                    inputs[_camel(key)] = state[r.name][_camel(key)]
            new[r.name] = inputs
        state = new
        history.append(dict(new[server]))
    return history


def test_generation_rolls_to_the_new_image_and_bootstrap_and_only_then() -> None:
    import components.host as host_module
    from harness import CALLS

    original = host_module.render_user_data
    runs = []
    for generation, ami, template in ((0, "ami-000000000000000a1", "v1"),
                                      (0, "ami-000000000000000b2", "v2"),  # newer AMI/template
                                      (1, "ami-000000000000000b2", "v2"),  # the roll
                                      (1, "ami-000000000000000c3", "v3")):  # drift afterwards
        with mock.patch.dict(CALLS, {"aws:ec2/getAmi:getAmi": {"id": ami}}), \
                mock.patch.object(host_module, "render_user_data",
                                  lambda p, t=template: original(p) + f"# template {t}\n"):
            runs.append(run_program("aws", overrides={"hostGeneration": generation},
                                    remove=("awsAmi",)))
    history = deployed(runs)
    assert [h["ami"] for h in history] == ["ami-000000000000000a1", "ami-000000000000000a1",
                                           "ami-000000000000000b2", "ami-000000000000000b2"]
    assert ["# template v1" in h["userData"] for h in history] == [True, True, False, False]
    assert ["# template v2" in h["userData"] for h in history] == [False, False, True, True]
    assert "host generation 1" in history[2]["userData"]
    # The server changes exactly once (run 3), and then with replace-on-change user_data.
    changes = [history[i] != history[i - 1] for i in range(1, 4)]
    assert changes == [False, True, False]
    assert history[2]["userDataReplaceOnChange"] is True
