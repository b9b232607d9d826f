"""Runs the real __main__.py under Pulumi mocks and records what it declares.

Mocks never see resource options, so the harness also wraps resource construction to record them
(protect, retain_on_delete, ignore_changes, depends_on, parent, provider).

Speed (bench/program_under_mocks.py): the SDK captures a stack trace for every resource
(traceback.extract_stack, reading source lines) to send to the engine as source positions;
the mock monitor ignores them (pulumi/runtime/mocks.py never reads stackTrace), so the harness
skips that capture. Runs are cached per (the config the program sees, mocked outputs); a Run
must not be mutated, and `fresh=True` forces a new, uncached run (e.g. to compare two runs).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
import runpy
import secrets as _secrets
import string
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
import pulumi.runtime.resource
import yaml
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
# libyaml's parser where PyYAML was built with it (its wheels are): ten times the pure-Python one
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
PROJECT = "jupyterhub-cloud"
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}

# Outputs the clouds compute; everything else echoes the inputs.
COMPUTED: dict[str, dict[str, Any]] = {
    "openstack:networking/floatingIp:FloatingIp": {"address": "198.51.100.10"},
    "aws:ec2/eip:Eip": {"publicIp": "198.51.100.20", "allocationId": "eipalloc-0001"},
    "aws:ec2/keyPair:KeyPair": {"keyName": "jhc-key-1234"},
    "command:local:Command": {"stdout": "ready"},
    "docker:index/container:Container": {"exitCode": 0, "containerLogs": "reconciled"},
    "aws:s3/bucket:Bucket": {"bucket": "jhc-aws-backup-0001", "region": "eu-central-1",
                             "arn": "arn:aws:s3:::jhc-aws-backup-0001"},
    "aws:iam/role:Role": {"arn": "arn:aws:iam::123456789012:role/jhc-dlm"},
}
CALLS: dict[str, dict[str, Any]] = {
    "openstack:networking/getNetwork:getNetwork": {"id": "net-0001", "name": "private"},
    "aws:ec2/getVpc:getVpc": {"id": "vpc-0001"},
    "aws:ec2/getSubnets:getSubnets": {"ids": ["subnet-0b", "subnet-0a"]},
    "aws:ec2/getSubnet:getSubnet": {"id": "subnet-0a", "availabilityZone": "eu-central-1a"},
    "aws:ec2/getAmi:getAmi": {"id": "ami-0f00d00d00d00d00d"},
    "openstack:identity/getAuthScope:getAuthScope": {
        "projectId": "0123abcd", "region": "RegionOne",
        "serviceCatalogs": [{"type": "identity", "endpoints": [
            {"interface": "public", "url": "https://keystone.example.org:5000/v3"}]}]},
}


def secret(value: Any) -> dict[str, Any]:
    return {**SECRET_SIG, "value": value}


def plain(value: Any) -> Any:
    """The value with every secret wrapper removed (for assertions on content)."""
    if is_rpc_secret(value):
        return plain(unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass
class Declared:
    type: str
    name: str
    inputs: dict[str, Any] = field(default_factory=dict)
    opts: pulumi.ResourceOptions | None = None
    custom: bool = True
    # The options the SDK registers, after the parents' transformations ran (opts is as declared).
    final_opts: pulumi.ResourceOptions | None = None

    @property
    def plain(self) -> dict[str, Any]:
        return plain(self.inputs)


@dataclass
class Run:
    resources: dict[str, Declared]
    outputs: dict[str, Any]
    secret_outputs: set[str]

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources.values() if r.type == typ and r.custom]

    def one(self, typ: str) -> Declared:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0]

    def __iter__(self) -> Iterator[Declared]:
        return iter(self.resources.values())


def generated(store: MutableMapping[str, str], key: str, kind: str, length: int) -> str:
    """A random secret kept in `store` (like Pulumi state keeps a RandomPassword's result)."""
    if key not in store:
        if kind == "password":
            alphabet = string.ascii_letters + string.digits
            store[key] = "".join(_secrets.choice(alphabet) for _ in range(length))
        elif kind == "hex":
            store[key] = _secrets.token_hex(length)
        else:
            store[key] = base64.b64encode(_secrets.token_bytes(length)).decode()
    return store[key]


def private_address(name: str) -> str:
    """A stable private address per resource name (10.0.x.y, x.y from a hash of the name)."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"10.0.{digest[0]}.{digest[1] % 250 + 2}"


class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs. With `secret_store`, random resources get real random values, generated
    once per name and kept in the store (the e2e tests deploy with them); else fixed values."""

    def __init__(self, resources: dict[str, Declared], preview: bool = False,
                 secret_store: MutableMapping[str, str] | None = None) -> None:
        self.resources = resources
        self.preview = preview
        self.secret_store = secret_store

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        entry = self.resources.setdefault(args.name, Declared(args.typ, args.name))
        entry.inputs = dict(args.inputs)
        state = {**args.inputs, **COMPUTED.get(args.typ, {})}
        # The SDK does not mark these secret under mocks; the real provider does.
        store = self.secret_store
        length = int(args.inputs.get("length", 32))
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = secret(f"generated-{args.name}-Zq8" if store is None else
                                     generated(store, args.name, "password", length))
        elif args.typ == "random:index/randomBytes:RandomBytes":
            state["hex"] = secret(hashlib.sha256(args.name.encode()).hexdigest() if store is None
                                  else generated(store, f"{args.name}:hex", "hex", length))
            state["base64"] = secret(f"b64-{args.name}" if store is None else
                                     generated(store, f"{args.name}:base64", "base64", length))
        elif args.typ == "openstack:identity/applicationCredential:ApplicationCredential":
            state["secret"] = secret(f"os-secret-{args.name}-Zq8")
        elif args.typ == "aws:iam/accessKey:AccessKey":
            state["secret"] = secret(f"aws-secret-{args.name}-Zq8")
        elif args.typ == "docker:index/image:Image" and not self.preview:
            # in a preview a new image has no id yet: its repoDigest is unknown
            state["repoDigest"] = "sha256:" + hashlib.sha256(args.name.encode()).hexdigest()
            if args.inputs.get("skipPush") is False:
                # pushed: <image name without its tag>@<digest the registry reported>
                # (pulumi-docker provider/image.go, parseRepoDigestFromAux)
                repository = args.inputs["imageName"].rsplit(":", 1)[0]
                state["repoDigest"] = f"{repository}@{state['repoDigest']}"
        elif args.typ in ("openstack:networking/port:Port", "aws:ec2/instance:Instance"):
            # Private addresses the cloud assigns: distinct per resource name.
            address = private_address(args.name)
            state["allFixedIps" if args.typ.startswith("openstack") else "privateIp"] = (
                [address] if args.typ.startswith("openstack") else address)
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = f"sha256:pulled-{args.inputs['name']}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return CALLS.get(args.token, {})


def load_yaml(text: str) -> Any:
    """yaml.safe_load's result (the same safe tags and resolver), parsed by libyaml."""
    return yaml.load(text, Loader=_SAFE_LOADER)


def stack_config(stack_file: Path) -> dict[str, str]:
    """A stack file's config in the string form Pulumi passes to programs."""
    return dict(_stack_config(stack_file))


@functools.cache  # the stack files do not change during a test session
def _stack_config(stack_file: Path) -> tuple[tuple[str, str], ...]:
    raw = load_yaml(stack_file.read_text())["config"]
    return tuple((k, v if isinstance(v, str) else json.dumps(v)) for k, v in raw.items())


_RUNS: dict[str, Run] = {}
_LOOP: asyncio.AbstractEventLoop | None = None


def run_program(stack: str, overrides: Mapping[str, Any] | None = None,
                remove: tuple[str, ...] = (), secret_keys: tuple[str, ...] = (), *,
                preview: bool = False, fresh: bool = False, stack_name: str | None = None,
                secret_store: MutableMapping[str, str] | None = None) -> Run:
    """Runs __main__.py for Pulumi.<stack>.yaml with project keys overridden or removed.

    preview=True runs it as `pulumi preview` does: outputs of new resources are unknown.
    stack_name: the stack name the program sees (default: `stack`). secret_store: see
    RecordingMocks. An earlier run that the program saw identically (the same config after
    overrides and removals, the same secret keys among it, the same mocks and shell) is reused;
    runs with `fresh` or a store are neither reused nor kept."""
    config = stack_config(ROOT / f"Pulumi.{stack}.yaml")
    for key in remove:
        config.pop(f"{PROJECT}:{key}", None)
    for key, value in (overrides or {}).items():
        config[f"{PROJECT}:{key}"] = value if isinstance(value, str) else json.dumps(value)
    secrets = sorted(k for k in secret_keys if f"{PROJECT}:{k}" in config)
    if fresh or secret_store is not None:  # never cached (a fresh run may be made under patches)
        return _run_program(config, secrets, preview, stack_name or stack, secret_store)
    key = json.dumps([stack_name or stack, config, secrets, preview, COMPUTED, CALLS,
                      {k: os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_CONTEXT")}],
                     sort_keys=True, default=str)
    if key not in _RUNS:
        _RUNS[key] = _run_program(config, secrets, preview, stack_name or stack)
    return _RUNS[key]


def _run_program(config: dict[str, str], secret_keys: list[str], preview: bool, stack_name: str,
                 secret_store: MutableMapping[str, str] | None = None) -> Run:
    # Pulumi's mocks run on the current event loop; other tests (JupyterHub's) may have closed it.
    # Runs share one loop while it is open: the mock monitor answers from the loop's executor
    # threads, and each of them makes an event loop of its own for as long as it lives
    # (pulumi/runtime/mocks.py _ensure_event_loop); a new loop per run meant new threads and
    # 7 more loops (21 file descriptors) a run, until a worker hit its open-file limit.
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(_LOOP)
    resources: dict[str, Declared] = {}
    exports: dict[str, pulumi.Output] = {}
    pulumi.runtime.set_mocks(RecordingMocks(resources, preview, secret_store), project=PROJECT,
                             stack=stack_name, preview=preview)
    pulumi.runtime.set_all_config(config, [f"{PROJECT}:{k}" for k in secret_keys])

    original_init = pulumi.Resource.__init__

    def recording_init(self: pulumi.Resource, t: str, name: str, custom: bool, props: Any = None,
                       opts: pulumi.ResourceOptions | None = None, *args: Any, **kwargs: Any
                       ) -> None:
        resources[name] = Declared(t, name, opts=opts, custom=custom)
        original_init(self, t, name, custom, props, opts, *args, **kwargs)

    original_register = pulumi.resource.register_resource

    def recording_register(res: pulumi.Resource, t: str, name: str, custom: bool, remote: bool,
                           new_dependency: Any, props: Any, opts: Any, *args: Any,
                           **kwargs: Any) -> None:
        if name in resources:
            resources[name].final_opts = opts
        original_register(res, t, name, custom, remote, new_dependency, props, opts, *args,
                          **kwargs)

    def export(name: str, value: Any) -> None:
        exports[name] = pulumi.Output.from_input(value)

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")

    # __main__ tunes the garbage collector for its own process and freezes what it declared, and
    # this leaves it so, as the language host does (bench/ measures such a process); the test
    # process gets its collector back after each test (tests/conftest.py).
    with mock.patch.object(pulumi.Resource, "__init__", recording_init), \
            mock.patch.object(pulumi.resource, "register_resource", recording_register), \
            mock.patch.object(pulumi, "export", export), \
            mock.patch.object(pulumi.runtime.resource, "_get_stack_trace", source_pb2.StackTrace):
        program()
    outputs = {k: _sync_await(o.future()) for k, o in exports.items()}
    secrets = {k for k, o in exports.items() if _sync_await(o.is_secret())}
    return Run(resources, outputs, secrets)


def container_env(container: Declared) -> dict[str, str]:
    """A container's variables; for the hub, those of its settings document too."""
    from services.hub.jhc_settings import SETTINGS_FILE
    variables = dict(e.split("=", 1) for e in container.plain.get("envs", []))
    for upload in container.plain.get("uploads", []):
        if upload["file"] == SETTINGS_FILE:
            variables.update(json.loads(upload["content"]))
    return variables
