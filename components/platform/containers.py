"""Small helpers every service container uses, so each service file shows only what is its own."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class Networks:
    backend: pulumi.Output[str]   # internal: postgres, ldap, hub
    frontend: pulumi.Output[str]  # proxy, hub, caddy, user servers


def secret_file(name: str, content: pulumi.Input[str], owner: str = "0") -> docker.ContainerUploadArgs:
    """A secret as a mode-600 file: unlike an environment variable, it is not in `docker inspect`."""
    return docker.ContainerUploadArgs(file=f"{SECRETS_DIR}/{name}", content=content,
                                      owner=owner, group=owner, permissions="0600")


def bind(host_path: str, container_path: str, read_only: bool = False) -> docker.ContainerVolumeArgs:
    """A bind mount from the data volume; never a Docker volume (those are deleted on replace)."""
    return docker.ContainerVolumeArgs(host_path=host_path, container_path=container_path,
                                      read_only=read_only)


def attach(network: pulumi.Input[str], alias: str) -> docker.ContainerNetworksAdvancedArgs:
    return docker.ContainerNetworksAdvancedArgs(name=network, aliases=[alias])


def build(name: str, context: str, image_name: pulumi.Input[str], parent: pulumi.Resource,
          platform: str, args: dict[str, str] | None = None, push: bool = False,
          depends_on: list[pulumi.Resource] | None = None) -> docker.Image:
    """Builds on the host's engine, without a registry; `repo_digest` then names the local image.

    `platform` is the host's (linux/amd64 or linux/arm64): left unset, pulumi-docker builds for
    the GOOS/GOARCH of the machine running pulumi (its DockerBuild.platform docs).
    With `push` the engine pushes `image_name` (which names the registry) after the build, and
    `repo_digest` is `<image_name without its tag>@sha256:<digest the registry reported>`
    (pulumi-docker provider/image.go: the push's aux digest, parseRepoDigestFromAux).
    """
    return docker.Image(name, image_name=image_name, skip_push=not push,
                        build=docker.DockerBuildArgs(context=context, args=args, platform=platform),
                        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on))


LABELS = [docker.ContainerLabelArgs(label="org.jupyterhub-cloud.managed", value="true")]
