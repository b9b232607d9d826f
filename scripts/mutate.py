#!/usr/bin/env python3
"""Apply hand-written mutations one at a time and run the unit suite against each.

Why: a test suite only earns trust when breaking what it claims to protect turns it red. Each
mutant below is a realistic regression (a security or durability property silently dropped), not
a random operator swap. A mutant is *killed* when the unit suite fails with it applied.

The tree is copied to a temporary directory first (tracked and untracked, non-ignored files), so
the working tree is never modified, even if the run is interrupted.

    venv/bin/python scripts/mutate.py                 # every mutant, unit suite (-m "not integration")
    venv/bin/python scripts/mutate.py --only privileged,metrics
    venv/bin/python scripts/mutate.py --list
    venv/bin/python scripts/mutate.py -- tests/test_platform.py   # narrower pytest arguments
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPLIES_TEST = "tests/test_layout.py::test_every_mutant_of_the_mutation_script_still_applies"


@dataclass(frozen=True)
class Mutant:
    id: str
    what: str  # the regression, in words
    path: str
    old: str
    new: str


MUTANTS: tuple[Mutant, ...] = (
    Mutant("allowed-groups-env", "the hub deployed with allowedGroups ignored (env not passed)",
           "components/platform/hub.py",
           'env["JHC_ALLOWED_GROUPS"] = ",".join(service.allowed_groups)',
           'env["JHC_ALLOWED_GROUPS"] = ""'),
    Mutant("allowed-groups-hub", "the hub ignores JHC_ALLOWED_GROUPS",
           "services/hub/jhc_hub.py",
           'a.allowed_groups = [f"cn={group},{ldap.group_base}" for group in ldap.allowed_groups]',
           "a.allowed_groups = []"),
    Mutant("privileged", "privileged: True added to user containers",
           "services/hub/jhc_hub.py",
           '"cap_drop": ["ALL"],', '"cap_drop": ["ALL"], "privileged": True,'),
    Mutant("culler-off-env", "the idle culler forced off by the program",
           "components/platform/hub.py",
           '"JHC_CULL_TIMEOUT": str(service.cull_idle_timeout),', '"JHC_CULL_TIMEOUT": "0",'),
    Mutant("culler-off-hub", "the idle culler forced off in the hub",
           "services/hub/jhc_settings.py",
           'cull_timeout = env.int("JHC_CULL_TIMEOUT", 3600, 0)', "cull_timeout = 0"),
    Mutant("metrics", "/hub/metrics exposed at Caddy",
           "services/caddy/Caddyfile.j2", "\trespond /hub/metrics* 404\n", ""),
    Mutant("reconcile-ignored", "a failed LDAP reconcile ignored",
           "scripts/ldap-reconcile.sh", "if (( status != 0 )); then", "if false; then"),
    Mutant("secrets-keepers", "secrets regenerated on every run (keepers)",
           "components/platform/secrets.py", "special=False,",
           'special=False, keepers={"run": str(__import__("time").time())},'),
    Mutant("secrets-python", "secrets generated in Python (a new value every run)",
           "components/platform/secrets.py",
           "return random.RandomBytes(f\"{name}-{role}\", length=32, opts=child).hex",
           "return pulumi.Output.secret(__import__(\"secrets\").token_hex(32))"),
    Mutant("password-generation-ignored", "a raised passwordGeneration resets nothing",
           "components/platform/secrets.py", "initial_password(key, u.name, u.password_generation)",
           "initial_password(key, u.name)"),
    Mutant("password-per-stack", "one generated password for every user",
           "components/platform/secrets.py",
           'f"jupyterhub-cloud initial password\\0{login}\\0{generation}"',
           'f"jupyterhub-cloud initial password\\0\\0{generation}"'),
    Mutant("password-random-each-run", "generated passwords drawn anew at every run",
           "components/platform/secrets.py", "digest = hmac.new(bytes.fromhex(key_hex),",
           "digest = hmac.new(__import__(\"os\").urandom(32),"),
    Mutant("secret-0640-hub", "0640 secret files accepted by the hub",
           "services/hub/jhc_document.py", "if st.st_mode & 0o077:", "if st.st_mode & 0o037:"),
    Mutant("secret-0640-upload", "secret files uploaded as 0640",
           "components/platform/containers.py", 'permissions="0600"', 'permissions="0640"'),
    Mutant("ldap-filter", "the LDAP group filter left unescaped",
           "services/hub/jhc_ldap.py", "(memberUid={escape_filter_chars(uid)})", "(memberUid={uid})"),
    Mutant("argon2-weak", "a weak Argon2 cost",
           "services/ldap/bootstrap.py", 'ARGON2_PARAMS = "m=19456 t=2 p=1"',
           'ARGON2_PARAMS = "m=1024 t=1 p=1"'),
    Mutant("acme-state", "Caddy's ACME state off the data volume",
           "components/platform/tls.py", 'volumes=[bind(f"{args.data_dir}/state/caddy", "/data")],',
           "volumes=[],"),
    Mutant("db-host", "the hub's database host dropped (sqlite inside the container)",
           "components/platform/hub.py", '"JHC_DB_HOST": POSTGRES.host,', ""),
    Mutant("unpinned-jupyterhub", "the notebook image installs an unpinned jupyterhub",
           "images/minimal/Dockerfile", '"jupyterhub==${JUPYTERHUB_VERSION}"', '"jupyterhub"'),
    Mutant("imds-v6", "the IPv6 metadata address left open",
           "cloud-init/jhc-metadata-block.sh", "  block ip6tables fd00:ec2::254/128\n", "  true\n"),
    Mutant("github-secret-plain", "a plain-text GitHub client secret accepted",
           "components/config/reader.py", "        if name not in self.secret_keys:\n",
           "        if False:\n"),
    Mutant("uid-forgotten", "an existing user's uid re-derived instead of kept (issue 7.11)",
           "services/ldap/desired.py", "elif name in remembered:", "elif False:"),
    Mutant("uid-no-probe", "collisions not probed: every attempt is the first choice",
           "services/ldap/desired.py", "candidate = probe_uid(name, attempt)",
           "candidate = probe_uid(name, 0)"),
    Mutant("uid-registry-not-unique", "the hub's uid registry without its unique constraint",
           "services/hub/jhc_uid_registry.py", 'sa.Column("uid", sa.Integer, nullable=False, unique=True)',
           'sa.Column("uid", sa.Integer, nullable=False)'),
    Mutant("uid-registry-forgets", "the hub's uid registry starts empty at every hub start",
           "services/hub/jhc_uid_registry.py", "            _metadata.create_all(self.engine)",
           "            _metadata.drop_all(self.engine)\n            _metadata.create_all(self.engine)"),
    Mutant("github-secret-unmarked", "a config secret not marked secret in the program",
           "components/config/reader.py", "        return pulumi.Output.secret(value)\n",
           "        return pulumi.Output.from_input(value)\n"),
    # --- swarm workers (hostWorkers): killed by tests/test_workers.py, test_worker_bootstrap.py,
    # test_worker_ssh_real.py
    Mutant("swarm-ports-open-openstack", "the swarm/NFS/registry ports opened to 0.0.0.0/0",
           "components/host/openstack_workers.py",
           "protocol=rule.protocol, remote_group_id=groups[rule.source],",
           'protocol=rule.protocol, remote_ip_prefix="0.0.0.0/0",'),
    Mutant("swarm-ports-open-aws", "the swarm/NFS/registry ports opened to 0.0.0.0/0 on AWS",
           "components/host/aws_workers.py",
           "referenced_security_group_id=groups[rule.source],", 'cidr_ipv4="0.0.0.0/0",'),
    Mutant("join-token-in-env", "the join token passed in the environment instead of stdin",
           "components/host/cluster.py",
           '"JHC_WORKER_TARGET": target, "JHC_WORKER_SSH_OPTS": worker_opts},',
           '"JHC_WORKER_TARGET": target, "JHC_WORKER_SSH_OPTS": worker_opts, "T": token},'),
    Mutant("join-token-logged", "the swarm step's stdout (the join token) logged",
           "components/host/cluster.py", 'delete="bash scripts/swarm-dissolve.sh", logging="stderr",',
           'delete="bash scripts/swarm-dissolve.sh",'),
    Mutant("no-drain", "a removed worker's VM deleted without draining it",
           "components/host/cluster.py", 'delete="bash scripts/swarm-leave.sh", stdin=token,',
           "stdin=token,"),
    Mutant("workers-touch-main-vm", "the worker count rendered into the main host's user_data",
           "components/host/__init__.py", "    return text\n",
           '    return text + (f"# workers {host.workers.count}\\n" if host.workers else "")\n'),
    Mutant("workers-resize-main-disk", "the workers' root disk size given to the main AWS VM",
           "components/host/aws.py", '"volume_size": aws.root_volume_size_gb,',
           '"volume_size": args.workers.root_volume_size_gb if args.workers else aws.root_volume_size_gb,'),
    Mutant("snapshots-touch-volume", "the AWS data volume's tags follow the snapshot settings",
           "components/host/aws.py", '"jupyterhub-cloud": "data", STACK_TAG: stack},',
           '"jupyterhub-cloud": "data", STACK_TAG: stack,\n'
           '                      "keep": str(args.snapshots.keep if args.snapshots else 0)},'),
    Mutant("datasets-writable-on-workers", "datasets exported and mounted read-write",
           "components/host/nfs.py", '("datasets", "ro")', '("datasets", "rw")'),
    Mutant("no-root-squash", "root on a worker is root on the main host's share",
           "scripts/templates/nfs-exports.j2", "sync,root_squash", "sync,no_root_squash"),
    Mutant("worker-images-on-nfs", "a worker's Docker data-root on the NFS share",
           "cloud-init/worker-daemon.json.j2", '{\n  "default-ulimits"',
           '{\n  "data-root": "/srv/jupyterhub/docker",\n  "default-ulimits"'),
    Mutant("jump-not-escaped", "the manager's %C left unescaped in the workers' ProxyCommand",
           "scripts/lib/nodes.sh", "${opts//%/%%}", "$opts"),
    # Swarm mode (issue 11)
    Mutant("swarm-no-placement", "user services may land on the manager (no worker constraint)",
           "services/hub/jhc_hub.py",
           'w.extra_placement_spec = {"constraints": list(s.swarm.constraints)}',
           "w.extra_placement_spec = {}"),
    Mutant("swarm-no-reservations", "user services without memory/CPU reservations",
           "services/hub/jhc_hub.py", "    w.mem_guarantee = s.swarm.mem_reservation\n",
           "    w.mem_guarantee = None\n"),
    Mutant("swarm-privileged", "swarm user services keep every capability",
           "services/hub/jhc_hub.py", '"cap_drop": ["ALL"]}', '"cap_drop": []}'),
    Mutant("swarm-tag-not-digest", "swarm images pushed and referenced by tag",
           "components/platform/containers.py", "skip_push=not push,", "skip_push=True,"),
    Mutant("swarm-postgres-on-overlay", "Postgres attached to the overlay",
           "components/platform/__init__.py",
           "prefix, args.data_dir, networks, secrets.postgres_password, args.build_platform),",
           "prefix, args.data_dir, networks if swarm is None else Networks(swarm.overlay,"
           " networks.frontend), secrets.postgres_password, args.build_platform),"),
    Mutant("swarm-registry-public", "the registry published on every interface",
           "components/platform/swarm.py", "ip=args.cluster.manager_address)],", "ip=\"\")],"),
)


def copy_tree(dest: Path) -> None:
    """Copy tracked and untracked (non-ignored) files; link the venv and the npm cache."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file() or src.is_symlink():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    for link in ("venv", ".cache"):
        if (ROOT / link).exists():
            (dest / link).symlink_to((ROOT / link).resolve())


def apply(tree: Path, mutant: Mutant) -> str:
    """Apply the mutant; return the original text. The old text must occur exactly once."""
    path = tree / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.id}: expected 1 occurrence in {mutant.path}, found {count}")
    path.write_text(text.replace(mutant.old, mutant.new))
    return text


def run_suite(tree: Path, pytest_args: list[str], timeout: int) -> tuple[bool, str]:
    """True if the suite passed (the mutant survived); the last lines of its output."""
    env = {**os.environ, "JHC_KEEP_DOCKERD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    # The test that every mutant still applies fails in a mutated tree by construction: left in,
    # it would be the first failure (-x) for every mutant that only a later file catches.
    cmd = [str(tree / "venv/bin/python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--deselect", APPLIES_TEST, *pytest_args]
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timeout"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    summary = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    return proc.returncode == 0, "\n".join(lines[:2] + summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every mutant still applies to the code")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per suite run")
    parser.add_argument("pytest_args", nargs="*", default=["-m", "not integration"])
    args = parser.parse_args()
    mutants = MUTANTS
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {m.id for m in MUTANTS}
        if unknown:
            parser.error(f"unknown mutant ids: {', '.join(sorted(unknown))}")
        mutants = tuple(m for m in MUTANTS if m.id in wanted)
    if args.check:
        stale = [m.id for m in mutants
                 if (ROOT / m.path).read_text().count(m.old) != 1]
        print("stale mutants: " + ", ".join(stale) if stale else f"{len(mutants)} mutants apply")
        return 1 if stale else 0
    if args.list:
        for m in mutants:
            print(f"{m.id:24} {m.path:34} {m.what}")
        return 0
    with tempfile.TemporaryDirectory(prefix="jhc-mutate-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        killed = 0
        for m in mutants:
            original = apply(tree, m)
            started = time.monotonic()
            try:
                survived, detail = run_suite(tree, args.pytest_args, args.timeout)
            finally:
                (tree / m.path).write_text(original)
            killed += not survived
            verdict = "SURVIVED" if survived else "killed"
            print(f"{verdict:8} {m.id:24} {time.monotonic() - started:5.1f}s  {m.what}", flush=True)
            if not survived:
                print("         " + detail.replace("\n", "\n         "), flush=True)
        print(f"killed {killed}/{len(mutants)}")
        return 0 if killed == len(mutants) else 1


if __name__ == "__main__":
    sys.exit(main())
