"""The Docker engine the service layer lives on: its identity, and how scripts reach it.

Every Docker resource is bound to the engine's identity with `replacement_trigger` (pulumi docs,
"replacementTrigger": a changed value forces a replacement), so moving to another engine (another
cloud, another localDockerHost, another data volume) re-creates everything there instead of
leaving the state claiming containers that the new engine does not have. A stack deployed before
the trigger existed is not replaced by its first `up`: the engine treats a null trigger on either
side as "no trigger" (pulumi/pulumi pkg/resource/deploy/step_generator.go shouldTriggerReplace);
from then on the state holds the identity. The value must be known at `up` time (the engine
refuses unknown triggers outside preview): it is built from the host's address and volume. The same
transformation gives every container a stop grace period: without one the provider removes a
running container at once (pulumi-docker Container.destroy_grace_seconds: "If defined will attempt
to stop the container before destroying"), and Postgres would get SIGKILL on every replacement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

STOP_GRACE_SECONDS = 30
CONTAINER = "docker:index/container:Container"
# Variables the docker CLI and pulumi-docker read from the shell. The provider's `host` decides
# for containers, but builds have honoured DOCKER_HOST instead (pulumi/pulumi-docker#567, #671):
# one of them set in the shell could put images and containers on different engines.
SHELL_OVERRIDES = ("DOCKER_HOST", "DOCKER_CONTEXT")


@dataclass(frozen=True)
class Engine:
    """Which engine (identity) and how a local script reaches it (scripts/lib/engine.sh)."""

    identity: pulumi.Output[str]
    docker_host: pulumi.Output[str]  # ssh://user@address or unix:///...
    ssh_opts: pulumi.Output[str]     # "" for a local engine

    def environment(self) -> dict[str, pulumi.Input[str]]:
        return {"JHC_DOCKER_HOST": self.docker_host, "JHC_SSH_OPTS": self.ssh_opts}


def check_shell(environ: Mapping[str, str]) -> None:
    """Refuses to run with a Docker engine chosen by the shell instead of the stack config."""
    for name in SHELL_OVERRIDES:
        if environ.get(name):
            raise pulumi.RunError(
                f"{name} is set in this shell ({environ[name]!r}); it could send image builds "
                f"and containers to different engines. Run `unset {name}`: the engine is chosen "
                "by the stack config (cloud, localDockerHost)")


def bind_to_engine(identity: pulumi.Input[str]) -> pulumi.ResourceTransformation:
    """A transformation for the service layer's parent: applied by the SDK to every child."""

    def transform(args: pulumi.ResourceTransformationArgs
                  ) -> pulumi.ResourceTransformationResult | None:
        if not args.type_.startswith("docker:"):
            return None
        props = dict(args.props)
        if args.type_ == CONTAINER:
            for key in ("stop_timeout", "destroy_grace_seconds"):
                if props.get(key) is None:
                    props[key] = STOP_GRACE_SECONDS
        opts = pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(replacement_trigger=identity))
        return pulumi.ResourceTransformationResult(props, opts)

    return transform
