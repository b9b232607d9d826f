"""The spawner's image menu: each configured image built on the host from images/<path>.

The menu handed to the hub names each image by its local id (repo_digest), so a rebuild changes
the hub's environment and new servers start from the new image. In Swarm mode each image is
pushed to the manager's registry and named by its registry digest
(<registry>/<repository>@sha256:...), which every worker can pull and never resolves as a tag.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config import NotebookImage
from components.platform.containers import build


@dataclass(frozen=True)
class NotebookImagesArgs:
    prefix: str
    images: tuple[NotebookImage, ...]
    platform: str  # the host's, e.g. linux/arm64
    registry: pulumi.Output[str] | None = None  # Swarm mode: host:port to push to
    depends_on: list[pulumi.Resource] | None = None  # Swarm mode: the registry container


class NotebookImages(pulumi.ComponentResource):
    menu: pulumi.Output[list[dict]]

    def __init__(self, name: str, args: NotebookImagesArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("jupyterhub-cloud:service:NotebookImages", name, None, opts)
        built = [build(f"{name}-{image.name}", f"images/{image.path}",
                       self._image_name(args, f"{args.prefix}-notebook-{image.name}:latest"),
                       self, args.platform, push=args.registry is not None,
                       depends_on=args.depends_on)
                 for image in args.images]
        self.menu = pulumi.Output.all(*[b.repo_digest for b in built]).apply(
            lambda ids: [{"name": image.name, "display_name": image.display_name, "image": ref,
                          "groups": list(image.groups)}
                         for image, ref in zip(args.images, ids, strict=True)])
        self.register_outputs({"menu": self.menu})

    @staticmethod
    def _image_name(args: NotebookImagesArgs, local: str) -> pulumi.Input[str]:
        registry = args.registry
        if registry is None:
            return local
        return registry.apply(lambda host: f"{host}/{local}")
