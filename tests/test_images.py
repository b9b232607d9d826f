"""The shipped notebook images pin the hub's JupyterHub version and a dated docker-stacks base.

Why: jupyterhub-singleuser must match the hub it reports to, and a moving base tag ("latest")
would change user environments on every rebuild of the host.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from images.catalog import (
    base_image_of,
    image_dockerfiles,
    jupyterhub_version_in_requirements,
    jupyterhub_version_of,
)

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
HUB = ROOT / "services" / "hub"
# Used only while the hub service files do not exist yet; once they do, they are the truth.
FALLBACK_HUB_VERSION = "6.1.1"
_HUB_BASE = re.compile(r"jupyterhub/jupyterhub:(?P<version>[0-9][^\s@]*)$")


def hub_pins(hub: Path = HUB) -> dict[str, str]:
    """Every JupyterHub pin found in the hub's service files, keyed by where it was found."""
    pins: dict[str, str] = {}
    requirements = hub / "requirements.txt"
    if requirements.is_file():
        version = jupyterhub_version_in_requirements(requirements)
        if version:
            pins[str(requirements)] = version
    dockerfile = hub / "Dockerfile"
    if dockerfile.is_file():
        try:
            pins[f"{dockerfile} ARG"] = jupyterhub_version_of(dockerfile)
        except ValueError:
            match = _HUB_BASE.search(base_image_of(dockerfile))
            if match:
                pins[f"{dockerfile} FROM"] = match.group("version")
    return pins


def test_shipped_images_are_the_menu() -> None:
    assert set(image_dockerfiles(IMAGES)) == {"minimal", "scipy", "r"}


def test_hub_pins_agree_with_each_other() -> None:
    pins = hub_pins()
    assert len(set(pins.values())) <= 1, f"hub files disagree on jupyterhub: {pins}"


@pytest.mark.parametrize("name", sorted(image_dockerfiles(IMAGES)))
def test_image_pins_the_hubs_jupyterhub(name: str) -> None:
    pins = hub_pins()
    expected = next(iter(pins.values()), FALLBACK_HUB_VERSION)
    dockerfile = image_dockerfiles(IMAGES)[name]
    assert jupyterhub_version_of(dockerfile) == expected, (
        f"{dockerfile} pins jupyterhub {jupyterhub_version_of(dockerfile)}, hub pins {pins}"
    )


@pytest.mark.parametrize("name", sorted(image_dockerfiles(IMAGES)))
def test_image_base_is_a_dated_docker_stacks_tag(name: str) -> None:
    base = base_image_of(image_dockerfiles(IMAGES)[name])
    assert re.fullmatch(rf"quay\.io/jupyter/{name}-notebook:\d{{4}}-\d{{2}}-\d{{2}}", base), base


@pytest.mark.parametrize("name", sorted(image_dockerfiles(IMAGES)))
def test_image_declares_no_secret_build_args(name: str) -> None:
    text = image_dockerfiles(IMAGES)[name].read_text()
    # Build args and labels end up in `docker history`/`inspect` for anyone on the host.
    assert not re.search(r"(?im)^\s*(ARG|ENV|LABEL)\s+\S*(PASSWORD|TOKEN|SECRET|KEY)", text)


def test_version_parser_reads_the_arg(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM x:1\nARG JUPYTERHUB_VERSION="5.4.0"\nRUN true\n')
    assert jupyterhub_version_of(dockerfile) == "5.4.0"


def test_version_parser_rejects_missing_and_conflicting_pins(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x:1\nRUN pip install jupyterhub\n")
    with pytest.raises(ValueError, match="no 'ARG JUPYTERHUB_VERSION"):
        jupyterhub_version_of(dockerfile)
    dockerfile.write_text("ARG JUPYTERHUB_VERSION=6.1.1\nFROM x:1\nARG JUPYTERHUB_VERSION=6.0.0\n")
    with pytest.raises(ValueError, match="conflicting"):
        jupyterhub_version_of(dockerfile)


def test_requirements_parser(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("jupyterhub-idle-culler==2.0.0\njupyterhub==6.1.1  # hub\n")
    assert jupyterhub_version_in_requirements(requirements) == "6.1.1"
    requirements.write_text("jupyterhub-idle-culler==2.0.0\n")
    assert jupyterhub_version_in_requirements(requirements) is None


def test_catalog_ignores_directories_without_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "catalog.py").write_text("")
    assert image_dockerfiles(tmp_path) == {"a": tmp_path / "a" / "Dockerfile"}


def test_hub_pins_are_read_from_requirements_and_dockerfile(tmp_path: Path) -> None:
    assert hub_pins(tmp_path) == {}
    (tmp_path / "requirements.txt").write_text("dockerspawner==14.0.0\njupyterhub==6.0.0\n")
    (tmp_path / "Dockerfile").write_text("FROM quay.io/jupyterhub/jupyterhub:6.1.1\n")
    assert set(hub_pins(tmp_path).values()) == {"6.0.0", "6.1.1"}
    (tmp_path / "Dockerfile").write_text(
        "ARG JUPYTERHUB_VERSION=6.0.0\nFROM quay.io/jupyterhub/jupyterhub:${JUPYTERHUB_VERSION}\n"
    )
    assert set(hub_pins(tmp_path).values()) == {"6.0.0"}


def run_instructions(dockerfile: Path) -> tuple[dict[str, str], list[str]]:
    """ARG defaults and shell-form RUN commands, continuation lines joined (as Docker reads them)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    args: dict[str, str] = {}
    runs: list[str] = []
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word.upper() == "ARG" and "=" in rest:
            name, value = rest.strip().split("=", 1)
            args[name] = value.strip("\"'")
        elif word.upper() == "RUN":
            runs.append(rest)
    return args, runs


@pytest.mark.parametrize("name", sorted(image_dockerfiles(IMAGES)))
def test_build_installs_exactly_the_hubs_jupyterhub(name: str, tmp_path: Path) -> None:
    """Runs the image's RUN commands in bash with logging stand-ins for pip and fix-permissions:
    what pip is asked to install, after the shell expanded the build args, must pin jupyterhub
    to the hub's version (read from the hub's requirements.txt, the image's truth)."""
    from packaging.requirements import Requirement

    stubs = tmp_path / "bin"
    stubs.mkdir()
    for tool in ("pip", "fix-permissions"):
        (stubs / tool).write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {tmp_path}/{tool}.args\n')
        (stubs / tool).chmod(0o755)
    args, runs = run_instructions(image_dockerfiles(IMAGES)[name])
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "CONDA_DIR": "/opt/conda", "NB_USER": "jovyan", **args}
    for command in runs:
        subprocess.run(["bash", "-c", command], env=env, check=True)
    pip_args = (tmp_path / "pip.args").read_text().splitlines()
    assert pip_args[0] == "install"
    wanted = [Requirement(a) for a in pip_args[1:] if not a.startswith("-")]
    hub_version = jupyterhub_version_in_requirements(HUB / "requirements.txt")
    (hub,) = [r for r in wanted if r.name.lower() == "jupyterhub"]
    assert str(hub.specifier) == f"=={hub_version}"
    assert all(str(r.specifier).startswith("==") for r in wanted), wanted
