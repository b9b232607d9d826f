"""Upstream base images for the e2e stack: the real image when it is here, else a stand-in.

Why: no registry is reachable on the test machines, so every upstream image the declared graph
needs (a RemoteImage's name, or a FROM line of a Dockerfile the graph builds) is replaced by a
stand-in built from standins/<kind>/ on the debootstrap base and tagged with the upstream name.
Each stand-in keeps only the contract written down in standins/README.md. An image of that name
that is not one of ours (no recipe label) is a real upstream image and is used as is; with
JHC_E2E_PULL_UPSTREAM=1 the real image is pulled first (for machines with a registry).
Stand-ins are cached by a recipe label: rebuilt only when their inputs change.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from docker_helpers import (  # noqa: E402
    BASE_TAG,
    HOST_CA_BUNDLE,
    NOTEBOOK_TAG,
    RECIPE_LABEL,
    _image_id,
    _images_lock,
    _write_build_log,
    base_recipe,
    context_recipe,
    ensure_base_image,
    ensure_notebook_image,
    image_recipe,
    notebook_recipe,
)

STANDINS = HERE / "standins"
NPM_MODULES = HERE.parents[1] / ".cache" / "npm" / "node_modules"  # scripts/install-system-deps.sh
PULL_UPSTREAM = os.environ.get("JHC_E2E_PULL_UPSTREAM") == "1"


@dataclass(frozen=True)
class StandIn:
    kind: str                 # directory under standins/
    args: dict[str, str]      # build args derived from the upstream tag


# Upstream repository → stand-in kind, and which build arg the tag feeds (if any).
KINDS: tuple[tuple[re.Pattern[str], str, str | None], ...] = (
    (re.compile(r"^quay\.io/jupyterhub/jupyterhub:(?P<tag>[\w.-]+)$"), "jupyterhub", "JUPYTERHUB_VERSION"),
    (re.compile(r"^quay\.io/jupyterhub/configurable-http-proxy:(?P<tag>[\w.-]+)$"), "chp", "CHP_VERSION"),
    (re.compile(r"^postgres:(?P<tag>[\w.-]+)$"), "postgres", None),
    (re.compile(r"^caddy:(?P<tag>[\w.-]+)$"), "caddy", None),
    (re.compile(r"^debian:12(\.\d+)*(-slim)?$"), "debian", None),
    (re.compile(r"^quay\.io/jupyter/[a-z-]+-notebook:(?P<tag>[\w.-]+)$"), "notebook", None),
)


def standin_for(name: str) -> StandIn:
    for pattern, kind, arg in KINDS:
        match = pattern.match(name)
        if match:
            return StandIn(kind, {arg: match["tag"]} if arg else {})
    raise LookupError(f"no stand-in for upstream image {name!r}: add one under {STANDINS} "
                      "with its contract in README.md")


def dockerfile_bases(dockerfile: Path, build_args: dict[str, str]) -> list[str]:
    """The FROM images of a Dockerfile, with ARG defaults and the given build args substituted."""
    values: dict[str, str] = {}
    bases: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].upper() == "ARG" and len(words) > 1:
            key, _, default = words[1].partition("=")
            values.setdefault(key, build_args.get(key, default))
        elif words[0].upper() == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m[1], ""), words[1])
            bases.append(image)
    return bases


def _chp_modules(version: str) -> Path:
    """The proxy installed by install-system-deps.sh, which must be the version asked for."""
    package = NPM_MODULES / "configurable-http-proxy" / "package.json"
    found = json.loads(package.read_text())["version"] if package.exists() else None
    if found != version:
        raise LookupError(f"{package}: configurable-http-proxy {found}, the stack pins {version}; "
                          "run scripts/install-system-deps.sh with that version")
    return NPM_MODULES


def _recipe(standin: StandIn, parent_recipe: str) -> str:
    ca = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()[:16]
    extra = [parent_recipe, ca, *(f"{k}={v}" for k, v in sorted(standin.args.items()))]
    if standin.kind == "chp":
        lock = NPM_MODULES / ".package-lock.json"
        extra.append(hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else "")
    return context_recipe(STANDINS / standin.kind, *extra)


def _is_ours(client: docker.DockerClient, name: str) -> bool | None:
    """True: our stand-in; False: a real image; None: missing."""
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    return RECIPE_LABEL in (image.labels or {})


def ensure_upstream(client: docker.DockerClient, name: str, log: Path) -> str:
    """Makes the image `name` present locally: real if available, else our stand-in. Returns
    "real" or "stand-in"."""
    if PULL_UPSTREAM and _is_ours(client, name) is not False:
        try:
            client.images.pull(name)
        except docker.errors.APIError as error:
            with log.open("a") as out:
                out.write(f"standins: pull of {name} failed ({error}); using a stand-in\n")
    if _is_ours(client, name) is False:
        return "real"
    standin = standin_for(name)
    if standin.kind == "notebook":
        parent, parent_recipe = ensure_notebook_image(client, log), notebook_recipe()
        args = {"NOTEBOOK_IMAGE": NOTEBOOK_TAG}
    else:
        parent, parent_recipe = ensure_base_image(client, log), base_recipe()
        args = {"BASE_IMAGE": BASE_TAG}
    del parent
    recipe = _recipe(standin, parent_recipe)
    with _images_lock():
        if image_recipe(client, name) != recipe:
            previous = _image_id(client, name)
            _build(client, standin, {**args, **standin.args}, name, recipe, log)
            if previous and previous != _image_id(client, name):
                # Our stale stand-in, untagged now: drop it unless something still uses it.
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(previous, noprune=False)
    return "stand-in"


def _build(client: docker.DockerClient, standin: StandIn, args: dict[str, str], tag: str,
           recipe: str, log: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="jhc-e2e-standin-") as tmp:
        context = Path(tmp)
        shutil.copytree(STANDINS / standin.kind, context, dirs_exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, context / "build-ca.crt")
        if standin.kind == "chp":
            shutil.copytree(_chp_modules(standin.args["CHP_VERSION"]), context / "node_modules",
                            symlinks=True)
        try:
            _, lines = client.images.build(
                path=str(context), tag=tag, buildargs=args, labels={RECIPE_LABEL: recipe},
                network_mode="host", rm=True, forcerm=True)
        except docker.errors.BuildError as error:
            _write_build_log(log, error.build_log)
            raise
        _write_build_log(log, lines)
