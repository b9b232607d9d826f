"""Catalog of the notebook images this repository ships, and the pins inside their Dockerfiles.

Why this exists: the hub and every notebook image must run the same JupyterHub version
(jupyterhub-singleuser talks the hub's REST API), and the notebook images are built on the
deployed host from these Dockerfiles. Pure functions over files, so tests and the Pulumi
service layer can read the same facts without Docker.
"""

from __future__ import annotations

import re
from pathlib import Path

# `ARG JUPYTERHUB_VERSION=6.1.1` (optionally quoted); the single place an image pins JupyterHub.
_HUB_ARG = re.compile(
    r"""^\s*ARG\s+JUPYTERHUB_VERSION\s*=\s*["']?(?P<version>[^\s"']+)["']?\s*$""",
    re.MULTILINE,
)
# `FROM quay.io/jupyter/minimal-notebook:2026-09-01 [AS name]`
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)?(?P<image>\S+)", re.MULTILINE | re.IGNORECASE)
# `jupyterhub==6.1.1` as a whole requirement line (extras and comments allowed).
_REQ = re.compile(r"^\s*jupyterhub(?:\[[^\]]*\])?\s*==\s*(?P<version>[^\s;#]+)", re.MULTILINE | re.IGNORECASE)


def image_dockerfiles(root: Path) -> dict[str, Path]:
    """Map each shipped notebook image name to its Dockerfile.

    `root` is the `images/` directory. An image is any direct subdirectory holding a
    `Dockerfile`; the directory name is the image's name in the spawner menu, so adding an
    image is adding a directory (nothing else to register).
    """
    return {
        child.name: child / "Dockerfile"
        for child in sorted(root.iterdir())
        if child.is_dir() and (child / "Dockerfile").is_file()
    }


def jupyterhub_version_of(dockerfile: Path) -> str:
    """The JupyterHub version pinned by `ARG JUPYTERHUB_VERSION=<v>` in `dockerfile`.

    Raises ValueError if there is no such ARG, or more than one disagreeing value, because an
    image without an explicit pin would silently install whatever version is newest.
    """
    versions = {m.group("version") for m in _HUB_ARG.finditer(dockerfile.read_text())}
    if not versions:
        raise ValueError(f"{dockerfile}: no 'ARG JUPYTERHUB_VERSION=<version>' line")
    if len(versions) > 1:
        raise ValueError(f"{dockerfile}: conflicting JUPYTERHUB_VERSION pins {sorted(versions)}")
    return versions.pop()


def base_image_of(dockerfile: Path) -> str:
    """The image reference of the first `FROM` line (the pinned docker-stacks base)."""
    match = _FROM.search(dockerfile.read_text())
    if match is None:
        raise ValueError(f"{dockerfile}: no FROM line")
    return match.group("image")


def jupyterhub_version_in_requirements(requirements: Path) -> str | None:
    """The `jupyterhub==<v>` pin in a pip requirements file, or None if it pins none."""
    match = _REQ.search(requirements.read_text())
    return match.group("version") if match else None
