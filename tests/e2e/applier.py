"""A small, test-only applier of the Docker layer the program declares (never used by `make up`).

No Pulumi engine runs here, so the e2e tests take the resource graph recorded under mocks
(tests/harness.py) and apply its `docker:` resources to a real engine with the meaning
pulumi-docker 5.x gives each input. References are checked against the provider sources:
  [img]  pulumi/pulumi-docker provider/image.go + provider.go (native Image resource)
  [ctr]  kreuzwerker/terraform-provider-docker internal/provider/resource_docker_container*.go
         (v4.5.0, the `upstream` submodule pulumi-docker bridges for Container/Network/RemoteImage)
  [rimg] same repository, resource_docker_image_funcs.go (RemoteImage)
  [res]  pulumi/pulumi-docker provider/resources.go (Container: DeleteBeforeReplace)
  [cmd]  pulumi/pulumi-command provider/pkg/provider/local/commandController.go (Create, Update,
         Delete), commandOutputs.go (run: /bin/sh -c, cwd = the program's directory, the process
         environment plus `environment`, `stdin` piped) and common/inputs.go (`triggers` is
         replaceOnChanges; any other changed input is an Update, which runs `update` or else
         `create`)
  [rt]   pulumi docs, resource option replacementTrigger: a changed value forces a replacement;
         pulumi/pulumi pkg/resource/deploy/step_generator.go shouldTriggerReplace: a null trigger
         on either side (a resource deployed before the option was set) never replaces
Anything the applier does not know (a resource type, an input, a value form) raises
UnsupportedInput: a declaration it cannot apply faithfully fails the run, it is never skipped.

Output references: under the harness's mocks an Image's repoDigest is "sha256:" + sha256(name)
and a RemoteImage's imageId "sha256:pulled-<name>"; the applier replaces these placeholders
(anywhere in a string, e.g. inside the hub's JSON image menu) by the real local image ids once
the images exist, and fails if a placeholder is left. A resource's `id` is "<name>-id" under the
mocks; a value that is exactly that (the LDAP reconcile's trigger) becomes the applied resource's
real id. Network and container names echo their inputs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from harness import ROOT, Declared, Run, plain

NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/image:Image"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
CONTAINER = "docker:index/container:Container"
PROVIDER = "pulumi:providers:docker"
COMMAND = "command:local:Command"
# Resources outside the Docker layer with nothing to apply: random values come from the mocks'
# secret store.
NOT_DOCKER = ("random:index/randomPassword:RandomPassword", "random:index/randomBytes:RandomBytes")
COMMAND_KEYS = {"create", "update", "delete", "environment", "stdin", "triggers"}

NETWORK_KEYS = {"name", "internal"}
IMAGE_KEYS = {"imageName", "skipPush", "build", "buildOnPreview"}
BUILD_KEYS = {"context", "dockerfile", "args", "platform"}
REMOTE_IMAGE_KEYS = {"name", "keepLocally"}
CONTAINER_KEYS = {"name", "image", "envs", "command", "uploads", "volumes", "networksAdvanced",
                  "ports", "healthcheck", "wait", "waitTimeout", "restart", "mustRun", "attach",
                  "logs", "labels", "stopTimeout", "destroyGraceSeconds"}
# [ctr] schema: these Container inputs are not ForceNew; every other one above is.
CONTAINER_IN_PLACE = {"restart", "wait", "waitTimeout", "mustRun", "attach", "logs",
                      "destroyGraceSeconds"}
UPLOAD_KEYS = {"file", "content", "owner", "group", "permissions"}
VOLUME_KEYS = {"hostPath", "containerPath", "readOnly"}
NETWORK_ATTACH_KEYS = {"name", "aliases"}
PORT_KEYS = {"internal", "external", "ip"}
HEALTH_KEYS = {"tests", "interval", "timeout", "retries", "startPeriod"}
LABEL_KEYS = {"label", "value"}
MOCK_DIGEST = re.compile(r"sha256:(pulled-[^\s\"',]+|[0-9a-f]{64})")


class UnsupportedInput(RuntimeError):
    """The graph uses something this applier cannot apply with pulumi-docker's meaning."""


class ApplyError(RuntimeError):
    """Applying failed the way `pulumi up` would fail (provider or program error)."""


@dataclass
class Applied:
    """One resource as the applier's 'state' keeps it (the role of Pulumi's state file)."""
    type: str
    inputs: dict[str, Any]
    id: str
    outputs: dict[str, Any] = field(default_factory=dict)
    deps: set[str] = field(default_factory=set)
    trigger: Any = None        # [rt] the replacement_trigger value it was created with
    failed: bool = False       # a Command whose create/update failed (initialization error)


@dataclass
class Report:
    actions: dict[str, str] = field(default_factory=dict)  # name -> create|replace|update|same|delete

    def changed(self) -> dict[str, str]:
        return {k: v for k, v in self.actions.items() if v != "same"}


def _only(keys: set[str], value: dict[str, Any], where: str) -> None:
    unknown = {k for k, v in value.items() if v is not None} - keys
    if unknown:
        raise UnsupportedInput(f"{where}: inputs {sorted(unknown)} are not supported by the e2e "
                               "applier; teach it their pulumi-docker meaning first")


def _duration_ns(text: str, where: str) -> int:
    """[ctr] healthcheck durations are Go durations (ms|s|m|h)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if not match:
        raise UnsupportedInput(f"{where}: duration {text!r} not understood")
    scale = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}[match[2]]
    return int(match[1]) * scale


def _int(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire form of numbers is float
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise UnsupportedInput(f"{where}: expected an integer, got {value!r}")


def trigger_replaces(old: Any, new: Any) -> bool:
    """[rt] Only a change between two set values replaces."""
    return old is not None and new is not None and old != new


def replacement_trigger(resource: Declared) -> Any:
    """[rt] The resolved replacement_trigger option the SDK registered (after transformations)."""
    opts = resource.final_opts
    if opts is None or getattr(opts, "replacement_trigger", None) is None:
        return None
    import pulumi

    from harness import _sync_await
    return _sync_await(pulumi.Output.from_input(opts.replacement_trigger).future())


def mock_placeholders(run: Run) -> dict[str, str]:
    """placeholder -> resource name, for every output reference the mocks hand out."""
    found: dict[str, str] = {}
    for r in run:
        if r.type == IMAGE:
            found["sha256:" + hashlib.sha256(r.name.encode()).hexdigest()] = r.name
        elif r.type == REMOTE_IMAGE:
            found[f"sha256:pulled-{r.plain['name']}"] = r.name
    return found


def dependencies(run: Run, resource: Declared, placeholders: dict[str, str],
                 network_names: dict[str, str]) -> set[str]:
    """Explicit depends_on plus the resources whose outputs the inputs reference."""
    deps = {getattr(d, "_name", None) for d in (resource.opts.depends_on or [])} \
        if resource.opts and isinstance(resource.opts.depends_on, list) else set()
    text = repr(resource.plain)
    deps |= {name for token, name in placeholders.items() if token in text}
    if resource.type == CONTAINER:
        for attach in resource.plain.get("networksAdvanced") or []:
            deps.add(network_names.get(attach.get("name"), ""))
    if resource.type == COMMAND:
        # ids (triggers) and network names (environment) are what the commands reference.
        for value in _strings(resource.plain):
            if value.endswith("-id") and value[:-3] in run.resources:
                deps.add(value[:-3])
            deps.add(network_names.get(value, ""))
    deps.discard(None)
    deps.discard("")
    return deps  # type: ignore[return-value]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


class Applier:
    def __init__(self, client: docker.DockerClient, ensure_upstream: Callable[[str], str],
                 log: Path, docker_host: str = "unix:///var/run/docker.sock") -> None:
        self.client = client
        self.ensure_upstream = ensure_upstream
        self.log = log
        self.docker_host = docker_host
        self.state: dict[str, Applied] = {}

    # ------------------------------------------------------------------ the whole graph
    def apply(self, run: Run) -> Report:
        report = Report()
        docker_resources: list[Declared] = []
        for r in run:
            if not r.custom or r.type in NOT_DOCKER:
                continue
            if r.type == PROVIDER:
                _only({"host"}, r.plain, r.name)
                if r.plain.get("host") != self.docker_host:
                    raise UnsupportedInput(f"{r.name}: host {r.plain.get('host')!r} is not the "
                                           f"engine under test ({self.docker_host})")
                continue
            if r.type not in (NETWORK, IMAGE, REMOTE_IMAGE, CONTAINER, COMMAND):
                raise UnsupportedInput(f"{r.name}: resource type {r.type} not supported")
            docker_resources.append(r)

        placeholders = mock_placeholders(run)
        network_names = {r.plain.get("name"): r.name for r in docker_resources if r.type == NETWORK}
        deps = {r.name: dependencies(run, r, placeholders, network_names) for r in docker_resources}
        # Declaration order breaks ties: the LocalHost ready check is declared first. (The Docker
        # provider's `host` comes from its stdout, a dependency the mocks do not show.)
        order = _topological(deps)
        by_name = {r.name: r for r in docker_resources}
        ids = {f"{name}-id": name for name in by_name}

        # [res] Container is DeleteBeforeReplace; a replaced Command is create-before-delete
        # (Pulumi's default): its old delete runs after the deployment's updates, as do the
        # deletes of resources gone from the program, in reverse dependency order.
        self._replaced: list[Applied] = []
        for name in order:
            resource = by_name[name]
            resolved = self._resolve(resource.plain, placeholders, name, ids)
            trigger = replacement_trigger(resource)
            old = self.state.get(name)
            replaced = old is not None and trigger_replaces(old.trigger, trigger)
            if replaced:
                if resource.type not in (CONTAINER, COMMAND):
                    raise UnsupportedInput(f"{name}: replacing a {resource.type} is not supported")
                if resource.type == CONTAINER:
                    self._delete(name)  # [rt] forced replacement; [res] DeleteBeforeReplace
            action = {
                NETWORK: self._network, IMAGE: self._image, REMOTE_IMAGE: self._remote_image,
                CONTAINER: self._container, COMMAND: self._command}[resource.type](name, resolved,
                                                                                   trigger)
            if replaced:
                action = "replace"
            report.actions[name] = action
            self.state[name].deps = deps[name]
            self.state[name].trigger = trigger
        for applied in self._replaced:
            self._delete_applied(applied)
        gone = {name: applied.deps for name, applied in self.state.items() if name not in by_name}
        for name in reversed(_topological(gone, missing_ok=True)):
            self._delete(name)
            report.actions[name] = "delete"
        return report

    def destroy(self) -> None:
        """Deletes every resource, dependents before their dependencies (reverse dependency
        order, as `pulumi destroy`). Bind-mounted data stays on disk: [ctr] a container's bind
        mounts are host directories; removing the container leaves them."""
        graph = {name: applied.deps for name, applied in self.state.items()}
        for name in reversed(_topological(graph, missing_ok=True)):
            self._delete(name)

    def _resolve(self, value: Any, placeholders: dict[str, str], where: str,
                 ids: dict[str, str]) -> Any:
        if isinstance(value, dict):
            return {k: self._resolve(v, placeholders, where, ids) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, placeholders, where, ids) for v in value]
        if isinstance(value, str) and value in ids:
            applied = self.state.get(ids[value])
            if applied is None:
                raise ApplyError(f"{where}: references the id of {ids[value]} before it exists")
            return applied.id
        if isinstance(value, str):
            def real(match: re.Match[str]) -> str:
                token = match[0]
                source = placeholders.get(token)
                if source is None:
                    return token  # a real sha256 written in config; not a reference
                applied = self.state.get(source)
                if applied is None:
                    raise ApplyError(f"{where}: references {source} before it was applied")
                return applied.outputs["ref"]
            return MOCK_DIGEST.sub(real, value)
        return value

    # ------------------------------------------------------------------ networks
    def _network(self, name: str, inputs: dict[str, Any], trigger: Any = None) -> str:
        _only(NETWORK_KEYS, inputs, name)
        old = self.state.get(name)
        if old and old.inputs == inputs and self._exists("networks", old.id):
            return "same"
        if old:
            raise UnsupportedInput(f"{name}: changing a Network is not supported by the applier")
        # [ctr] resource_docker_network_funcs.go: driver defaults to bridge; internal as given.
        network = self.client.networks.create(inputs["name"], driver="bridge",
                                              internal=bool(inputs.get("internal", False)),
                                              check_duplicate=True)
        self.state[name] = Applied(NETWORK, inputs, network.id, {"name": inputs["name"]})
        return "create"

    # ------------------------------------------------------------------ images
    def _image(self, name: str, inputs: dict[str, Any], trigger: Any = None) -> str:
        _only(IMAGE_KEYS, inputs, name)
        if inputs.get("skipPush") is not True:
            raise UnsupportedInput(f"{name}: only skipPush=true (build on the engine, no registry)")
        build = inputs.get("build") or {}
        _only(BUILD_KEYS, build, f"{name}.build")
        # [img] marshalBuildAndApplyDefaults: context defaults to ".", dockerfile to
        # <context>/Dockerfile, both relative to the program's directory.
        context = ROOT / build.get("context", ".")
        dockerfile = ROOT / (build.get("dockerfile") or f"{build.get('context', '.')}/Dockerfile")
        if not dockerfile.is_file():
            raise ApplyError(f"{name}: could not open dockerfile {dockerfile}")  # [img] Check
        args = {k: str(v) for k, v in (build.get("args") or {}).items()}
        from standins import dockerfile_bases
        for base in dockerfile_bases(dockerfile, args):
            self.ensure_upstream(base)
        # [img] dockerBuild: tagged imageName, build args, platform; with skipPush, repoDigest
        # is the local image id. The provider builds with BuildKit by default; this uses the
        # classic builder (same result for these Dockerfiles, no BuildKit-only syntax).
        # network_mode=host: this test engine runs without iptables, so builds reach the
        # Debian mirror and PyPI only through the host's network.
        try:
            image, lines = self.client.images.build(
                path=str(context), dockerfile=str(dockerfile.relative_to(context)),
                tag=inputs["imageName"], buildargs=args or None, platform=build.get("platform"),
                network_mode="host", rm=True, forcerm=True)
        except docker.errors.BuildError as error:
            self._write(error.build_log)
            raise ApplyError(f"{name}: build failed: {error}") from error
        self._write(lines)
        old = self.state.get(name)
        self.state[name] = Applied(IMAGE, inputs, inputs["imageName"], {"ref": image.id})
        # [img] Diff: a changed input is an update (rebuild) of the same resource, never a
        # replacement; what consumers see change is repoDigest.
        if old is None:
            return "create"
        return "same" if old.outputs["ref"] == image.id and old.inputs == inputs else "update"

    def _remote_image(self, name: str, inputs: dict[str, Any], trigger: Any = None) -> str:
        _only(REMOTE_IMAGE_KEYS, inputs, name)
        # [rimg] findImage: a local image of that name is used; only a missing one is pulled.
        self.ensure_upstream(inputs["name"])
        image_id = self.client.images.get(inputs["name"]).id
        old = self.state.get(name)
        self.state[name] = Applied(REMOTE_IMAGE, inputs, image_id, {"ref": image_id})
        if old is None:
            return "create"
        return "same" if old.outputs["ref"] == image_id and old.inputs == inputs else "update"

    # ------------------------------------------------------------------ containers
    def _container(self, name: str, inputs: dict[str, Any], trigger: Any = None) -> str:
        _only(CONTAINER_KEYS, inputs, name)
        old = self.state.get(name)
        if old is not None and self._exists("containers", old.id):
            forced = {k for k in set(old.inputs) | set(inputs)
                      if k not in CONTAINER_IN_PLACE and old.inputs.get(k) != inputs.get(k)}
            if not forced:
                return self._update_in_place(name, old, inputs)
            self._delete(name)  # [res] DeleteBeforeReplace
            self._create_container(name, inputs)
            return "replace"
        if old is not None:
            del self.state[name]  # gone from the engine: [ctr] Read drops it, then it is created
        self._create_container(name, inputs)
        return "create"

    def _update_in_place(self, name: str, old: Applied, inputs: dict[str, Any]) -> str:
        container = self.client.containers.get(old.id)
        action = "same"
        if old.inputs.get("restart") != inputs.get("restart"):
            # [ctr] resourceDockerContainerUpdate: restart policy via ContainerUpdate.
            container.update(restart_policy={"Name": inputs.get("restart") or "no"})
            action = "update"
        must_run = inputs.get("mustRun", True)
        if must_run and container.status != "running":
            # [ctr] Read sets must_run=false for a stopped container; Update starts it again.
            container.start()
            action = "update"
        if old.inputs != inputs:
            action = "update"
        old.inputs = inputs
        return action

    def _create_container(self, name: str, inputs: dict[str, Any]) -> None:
        api = self.client.api
        binds: dict[str, dict[str, str]] = {}
        for i, volume in enumerate(inputs.get("volumes") or []):
            _only(VOLUME_KEYS, volume, f"{name}.volumes[{i}]")
            if not volume.get("hostPath"):
                raise UnsupportedInput(f"{name}.volumes[{i}]: only bind mounts (hostPath)")
            binds[volume["hostPath"]] = {"bind": volume["containerPath"],
                                         "mode": "ro" if volume.get("readOnly") else "rw"}
        port_bindings: dict[str, tuple[str, int]] = {}
        for i, port in enumerate(inputs.get("ports") or []):
            _only(PORT_KEYS, port, f"{name}.ports[{i}]")
            internal = _int(port["internal"], f"{name}.ports[{i}].internal")
            # [ctr] ports: protocol defaults to tcp, ip to 0.0.0.0, external to internal... no:
            # an unset external lets Docker pick one; the program always sets it.
            if port.get("external") is None:
                raise UnsupportedInput(f"{name}.ports[{i}]: external must be set")
            port_bindings[f"{internal}/tcp"] = (port.get("ip") or "0.0.0.0",
                                                _int(port["external"], f"{name}.ports[{i}]"))
        restart = inputs.get("restart") or "no"  # [ctr] restart default "no"
        labels = {}
        for i, label in enumerate(inputs.get("labels") or []):
            _only(LABEL_KEYS, label, f"{name}.labels[{i}]")
            labels[label["label"]] = label["value"]
        healthcheck = None
        if inputs.get("healthcheck"):
            hc = inputs["healthcheck"]
            _only(HEALTH_KEYS, hc, f"{name}.healthcheck")
            # [ctr] defaults: interval/timeout/start_period "0s", retries 0 (= Docker's defaults).
            healthcheck = {
                "test": hc["tests"],
                "interval": _duration_ns(hc.get("interval", "0s"), f"{name}.healthcheck"),
                "timeout": _duration_ns(hc.get("timeout", "0s"), f"{name}.healthcheck"),
                "start_period": _duration_ns(hc.get("startPeriod", "0s"), f"{name}.healthcheck"),
                "retries": _int(hc.get("retries", 0), f"{name}.healthcheck.retries")}
        host_config = api.create_host_config(
            binds=binds or None, port_bindings=port_bindings or None,
            restart_policy={"Name": restart} if restart != "no" else None,
            network_mode="bridge")  # [ctr] network_mode default "bridge"
        stop_timeout = inputs.get("stopTimeout")
        created = api.create_container(
            image=inputs["image"], command=inputs.get("command"), name=inputs["name"],
            environment=inputs.get("envs") or None, labels=labels or None,
            healthcheck=healthcheck, host_config=host_config,
            # [ctr] stop_timeout: Config.StopTimeout (ForceNew)
            stop_timeout=None if stop_timeout is None else _int(stop_timeout, f"{name}.stopTimeout"),
            ports=[int(p.split("/")[0]) for p in port_bindings] or None)
        cid = created["Id"]
        self.state[name] = Applied(CONTAINER, inputs, cid, {})
        attaches = inputs.get("networksAdvanced") or []
        if attaches:
            # [ctr] create: with networks_advanced, disconnect the default bridge, then connect
            # each network with its aliases.
            api.disconnect_container_from_network(cid, "bridge")
            for i, attach in enumerate(attaches):
                _only(NETWORK_ATTACH_KEYS, attach, f"{name}.networksAdvanced[{i}]")
                api.connect_container_to_network(cid, attach["name"],
                                                 aliases=attach.get("aliases") or None)
        for i, upload in enumerate(inputs.get("uploads") or []):
            _only(UPLOAD_KEYS, upload, f"{name}.uploads[{i}]")
            api.put_archive(cid, "/", _upload_tar(upload, f"{name}.uploads[{i}]"))
        # [ctr] start defaults to true; uploads happen before it.
        api.start(cid)
        if inputs.get("wait"):
            self._wait_healthy(name, cid, _int(inputs.get("waitTimeout", 60), name))
        if inputs.get("attach"):
            # [ctr] attach: wait for the container to stop; logs: keep its output.
            result = api.wait(cid, timeout=600)
            logs = api.logs(cid).decode(errors="replace") if inputs.get("logs") else ""
            self.state[name].outputs.update(exitCode=result["StatusCode"], containerLogs=logs)
            # The program (components/ldap.py _check_reconcile) turns a non-zero exit code of its
            # one-shot container into a failed deploy; these outputs are what it reads.
            if result["StatusCode"] != 0:
                raise ApplyError(f"{name}: exited {result['StatusCode']}:\n{logs[-3000:]}")
        # must_run: [ctr] v4.5.0's Read does not fail on a stopped container; it records
        # must_run=false, and the next apply's Update starts it (see _update_in_place).

    def _wait_healthy(self, name: str, cid: str, timeout: int) -> None:
        """[ctr] wait: poll until healthy; no healthcheck (declared or from the image) is an
        error; not healthy within wait_timeout fails the create."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.client.api.inspect_container(cid)["State"]
            if state.get("Health") is None:
                raise ApplyError(f"{name}: 'wait' but the container has no healthcheck")
            if state["Health"]["Status"] == "healthy":
                return
            if time.monotonic() > deadline:
                logs = self.client.api.logs(cid).decode(errors="replace")[-3000:]
                raise ApplyError(f"{name}: container failed to be in healthy state in {timeout}s:"
                                 f"\n{logs}")
            time.sleep(1)

    # ------------------------------------------------------------------ deletes
    def _delete(self, name: str) -> None:
        self._delete_applied(self.state.pop(name))

    def _delete_applied(self, applied: Applied) -> None:
        if applied.type == CONTAINER:
            try:
                container = self.client.containers.get(applied.id)
            except docker.errors.NotFound:
                return  # [ctr] delete is idempotent for missing containers
            # [ctr] resourceDockerContainerDelete: unless attach, ContainerStop with timeout
            # destroy_grace_seconds (0 when unset: killed at once), then remove with its
            # anonymous volumes (remove_volumes default true). Bind mounts stay on the host.
            if not applied.inputs.get("attach"):
                grace = _int(applied.inputs.get("destroyGraceSeconds") or 0, "destroyGraceSeconds")
                self.client.api.stop(applied.id, timeout=grace)
            container.remove(v=True, force=True)
        elif applied.type == COMMAND:
            # [cmd] Delete: runs `delete` (if any) with the inputs it was created with, and
            # PULUMI_COMMAND_STDOUT/STDERR from its last run; a failure fails the destroy.
            if applied.inputs.get("delete"):
                self._run_command(applied.id, applied.inputs["delete"], applied.inputs,
                                  applied.outputs)
        elif applied.type == NETWORK:
            try:
                self.client.networks.get(applied.id).remove()
            except docker.errors.NotFound:
                pass
        elif applied.type == REMOTE_IMAGE and not applied.inputs.get("keepLocally"):
            # [rimg] keep_locally=false: the image is removed on destroy.
            self.client.images.remove(applied.id)
        # [img] Image Delete is a no-op in pulumi-docker (provider.go Delete).

    # ------------------------------------------------------------------ commands
    def _command(self, name: str, inputs: dict[str, Any], trigger: Any = None) -> str:
        _only(COMMAND_KEYS, inputs, name)
        old = self.state.get(name)
        if old is not None and old.inputs.get("triggers") == inputs.get("triggers") \
                and old.trigger == trigger:
            if old.inputs == inputs and not old.failed:
                return "same"
            # [cmd] Update: `update`, else `create`, else nothing; the engine also gives a
            # resource with initialization errors (a failed create) an update on the next run.
            old.inputs, old.failed = inputs, False
            command = inputs.get("update") or inputs.get("create")
            if command:
                self._run_command(name, command, inputs, old.outputs, old)
            return "update"
        if old is not None:
            # [cmd] triggers are replaceOnChanges: a new resource is created (running
            # `create`), the old one deleted (running its `delete`) after the updates.
            self._replaced.append(self.state.pop(name))
        applied = Applied(COMMAND, inputs, f"{name}-{time.monotonic_ns():x}", {})
        self.state[name] = applied
        if inputs.get("create"):
            self._run_command(name, inputs["create"], inputs, applied.outputs, applied)
        return "create"

    def _run_command(self, name: str, command: str, inputs: dict[str, Any],
                     outputs: dict[str, Any], applied: Applied | None = None) -> None:
        """[cmd] run: /bin/sh -c <command> in the program's directory, the process environment
        plus `environment` plus the previous stdout/stderr, `stdin` piped when not empty."""
        env = {**os.environ, **{k: str(v) for k, v in (inputs.get("environment") or {}).items()}}
        for key, out in (("PULUMI_COMMAND_STDOUT", "stdout"), ("PULUMI_COMMAND_STDERR", "stderr")):
            if outputs.get(out):
                env[key] = outputs[out]
        stdin = inputs.get("stdin") or None
        result = subprocess.run(["/bin/sh", "-c", command], cwd=ROOT, env=env, input=stdin,
                                stdin=None if stdin else subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=900, check=False)
        outputs.update(stdout=result.stdout.rstrip("\n"), stderr=result.stderr.rstrip("\n"))
        with self.log.open("a") as log:
            log.write(f"--- {name}: {command}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            if applied is not None:
                applied.failed = True
            raise ApplyError(f"{name}: command {command!r} exited {result.returncode}:\n"
                             f"{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def _exists(self, kind: str, ident: str) -> bool:
        try:
            getattr(self.client, kind).get(ident)
            return True
        except docker.errors.NotFound:
            return False

    def _write(self, lines: Any) -> None:
        with self.log.open("a") as out:
            for chunk in lines:
                if isinstance(chunk, dict) and "stream" in chunk:
                    out.write(chunk["stream"])


def _upload_tar(upload: dict[str, Any], where: str) -> bytes:
    """[ctr] upload: one tar entry at `file`, mode from `permissions` (octal), else 0644.
    owner/group (pulumi-docker 5.2 SDK; kreuzwerker issue #996): numeric ids are used as is,
    names would be resolved on the machine running Pulumi: only numeric ids are supported here."""
    if upload.get("content") is None:
        raise UnsupportedInput(f"{where}: only `content` uploads are supported")
    data = upload["content"].encode()
    info = tarfile.TarInfo(upload["file"].lstrip("/"))
    info.size = len(data)
    info.mode = int(upload["permissions"], 8) if upload.get("permissions") else 0o644
    info.mtime = int(time.time())
    for key, attr in (("owner", "uid"), ("group", "gid")):
        if upload.get(key) is not None:
            if not str(upload[key]).isdigit():
                raise UnsupportedInput(f"{where}: {key} {upload[key]!r} is not a numeric id")
            setattr(info, attr, int(upload[key]))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _topological(deps: dict[str, set[str]], missing_ok: bool = False) -> list[str]:
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise ApplyError(f"dependency cycle: {' -> '.join(path + (name,))}")
        for dep in sorted(deps.get(name, ())):
            if dep not in deps:
                if missing_ok:
                    continue
                raise ApplyError(f"{name} depends on {dep}, which is not a Docker resource")
            visit(dep, path + (name,))
        done.add(name)
        order.append(name)

    for name in deps:  # declaration order, as the program registered them
        visit(name, ())
    return order


__all__ = ["Applied", "ApplyError", "Applier", "Report", "UnsupportedInput", "plain"]
