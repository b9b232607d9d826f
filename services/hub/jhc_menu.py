"""The image menu and the datasets as the hub reads them (JHC_IMAGES_JSON, JHC_DATASETS_JSON).

Stdlib only: the Pulumi program validates its menu with the same functions at preview.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

if __package__:  # the Pulumi program imports services.hub.jhc_menu
    from .jhc_variables import HubConfigError
else:  # the hub image: the modules lie side by side in /etc/jupyterhub
    from jhc_variables import HubConfigError

#: Image and dataset keys: also used as directory names inside the container.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")



@dataclass(frozen=True)
class ImageChoice:
    """One entry of the spawner's image menu (from JHC_IMAGES_JSON)."""

    name: str
    display_name: str
    image: str
    groups: frozenset[str]

    def available_to(self, user_groups: Iterable[str]) -> bool:
        """Empty ``groups`` means everyone; otherwise membership in any listed group."""
        return not self.groups or bool(self.groups & set(user_groups))


@dataclass(frozen=True)
class Dataset:
    """A host directory mounted read-only into every user container."""

    name: str
    host_path: str


def parse_images(value: Any, var: str = "JHC_IMAGES_JSON") -> list[ImageChoice]:
    """Validate the image menu. Never returns a wildcard: every image is listed explicitly."""
    if not isinstance(value, list) or not value:
        raise HubConfigError(var, "must be a non-empty JSON list of images")
    images: list[ImageChoice] = []
    for index, item in enumerate(value):
        where = f"item {index}"
        if not isinstance(item, dict):
            raise HubConfigError(var, f"{where} is not an object")
        unknown = set(item) - {"name", "display_name", "image", "groups"}
        if unknown:
            raise HubConfigError(var, f"{where} has unknown keys {sorted(unknown)}")
        name, image = item.get("name"), item.get("image")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise HubConfigError(var, f"{where}: name {name!r} must match {NAME_RE.pattern}")
        if not isinstance(image, str) or not image.strip() or "*" in image or " " in image:
            raise HubConfigError(var, f"{where}: image {image!r} is not an image reference")
        display = item.get("display_name", name)
        if not isinstance(display, str) or not display.strip():
            raise HubConfigError(var, f"{where}: display_name must be a non-empty string")
        groups = item.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise HubConfigError(var, f"{where}: groups must be a list of group names")
        images.append(ImageChoice(name, display.strip(), image.strip(), frozenset(groups)))
    names = [image.name for image in images]
    if len(set(names)) != len(names):
        raise HubConfigError(var, "image names must be unique")
    return images


def parse_datasets(value: Any, var: str = "JHC_DATASETS_JSON") -> list[Dataset]:
    if not isinstance(value, list):
        raise HubConfigError(var, "must be a JSON list")
    datasets: list[Dataset] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"name", "host_path"}:
            raise HubConfigError(var, f"item {index} must be {{\"name\", \"host_path\"}}")
        name, path = item["name"], item["host_path"]
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise HubConfigError(var, f"item {index}: name {name!r} must match {NAME_RE.pattern}")
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or any(ch in path for ch in "{}:")
            or ".." in path.split("/")
        ):
            raise HubConfigError(var, f"item {index}: host_path {path!r} is not a plain abs path")
        datasets.append(Dataset(name, os.path.normpath(path)))
    if len({d.name for d in datasets}) != len(datasets):
        raise HubConfigError(var, "dataset names must be unique")
    return datasets


