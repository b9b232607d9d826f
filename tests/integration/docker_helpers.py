"""Build the test-only images the integration tests run, with no container registry.

Why: nothing can be pulled here, so the base image is a Debian bookworm rootfs made with
debootstrap and `docker import`ed, and the notebook stand-in image is built FROM it. Both are
cached by tag plus a recipe label: a rebuild happens only when the tag is missing or the recipe
(package list, Dockerfile, scripts) changed, because the suite runs many times a day.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CI_DOCKER = REPO / "scripts" / "ci-docker.sh"
NOTEBOOK_CONTEXT = HERE / "images" / "notebook"

BASE_TAG = "jhc-test/base:bookworm"
NOTEBOOK_TAG = "jhc-test/notebook:bookworm"
RECIPE_LABEL = "org.jupyterhub-cloud.test-recipe"
SUITE = "bookworm"
# passwd (useradd), util-linux (setpriv) and bash are in minbase already.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "tini", "sudo")
DEBIAN_MIRROR = os.environ.get("JHC_DEBIAN_MIRROR", "http://deb.debian.org/debian")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LOCK_FILE = Path(tempfile.gettempdir()) / "jhc-test-images.lock"

# The smallest capability set with which a notebook container started as root can still set up
# NB_USER and drop to it, under `no-new-privileges` and `cap_drop=["ALL"]` (proven by
# test_engine_smoke.py): CHOWN for useradd (it chowns /etc/shadow) and a home it must create,
# SETUID/SETGID for the drop itself (setpriv, or sudo as the docker-stacks images do).
NOTEBOOK_CAP_ADD = ("CHOWN", "SETGID", "SETUID")


def base_recipe() -> str:
    """A short hash of everything that defines the base image (not the mirror: same bytes)."""
    text = f"debootstrap --variant=minbase {SUITE} include={','.join(BASE_PACKAGES)} v1"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def context_recipe(context: Path, *extra: str) -> str:
    """A short hash of a build context's files (names and bytes) plus extra strings."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(path.relative_to(context).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:16]


def image_recipe(client: docker.DockerClient, tag: str) -> str | None:
    """The recipe label of the local image `tag`, or None when the image is missing."""
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return (image.labels or {}).get(RECIPE_LABEL)


@contextlib.contextmanager
def _images_lock() -> Iterator[None]:
    """Serialise builds across concurrent test sessions sharing one engine."""
    with LOCK_FILE.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return sorted((p for p in points if p.startswith(prefix)), reverse=True)


def _remove_rootfs(root: Path) -> None:
    # debootstrap mounts proc/sys inside the target; a failed run can leave them mounted, and
    # removing a tree with a live /proc or /sys under it must never be attempted.
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounts_under(root):
        raise RuntimeError(f"{root} still has mounts under it; not removing")
    shutil.rmtree(root, ignore_errors=True)


def build_base_image(client: docker.DockerClient, log: Path) -> str:
    """debootstrap a minbase bookworm rootfs and import it as BASE_TAG (unconditionally)."""
    workdir = Path(tempfile.mkdtemp(prefix="jhc-rootfs-"))
    rootfs = workdir / "rootfs"
    try:
        with log.open("ab") as out:
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    SUITE,
                    str(rootfs),
                    DEBIAN_MIRROR,
                ],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftovers).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            subprocess.run(
                [
                    "docker",
                    "import",
                    "--change",
                    f"LABEL {RECIPE_LABEL}={base_recipe()}",
                    "--change",
                    'CMD ["/bin/bash"]',
                    "-",
                    BASE_TAG,
                ],
                stdin=tar.stdout,
                check=True,
                capture_output=True,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError("tar of the debootstrap rootfs failed")
    finally:
        _remove_rootfs(workdir)
    return BASE_TAG


def build_notebook_image(client: docker.DockerClient, log: Path) -> str:
    """Build NOTEBOOK_TAG FROM BASE_TAG (unconditionally), pip reaching PyPI via host network."""
    with tempfile.TemporaryDirectory(prefix="jhc-nbctx-") as tmp:
        context = Path(tmp)
        shutil.copytree(NOTEBOOK_CONTEXT, context, dirs_exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, context / "build-ca.crt")
        try:
            _, lines = client.images.build(
                path=str(context),
                tag=NOTEBOOK_TAG,
                buildargs={"BASE_IMAGE": BASE_TAG},
                labels={RECIPE_LABEL: notebook_recipe()},
                network_mode="host",
                rm=True,
                forcerm=True,
            )
        except docker.errors.BuildError as error:
            _write_build_log(log, error.build_log)
            raise
        _write_build_log(log, lines)
    return NOTEBOOK_TAG


def _write_build_log(log: Path, lines: object) -> None:
    with log.open("a") as out:
        for chunk in lines:  # type: ignore[attr-defined]
            if isinstance(chunk, dict) and "stream" in chunk:
                out.write(chunk["stream"])


def notebook_recipe() -> str:
    """The notebook image depends on its context and on the base it is built FROM."""
    return context_recipe(NOTEBOOK_CONTEXT, base_recipe())


def ensure_base_image(client: docker.DockerClient, log: Path) -> str:
    """BASE_TAG, built only if missing or built from another recipe. Returns the tag."""
    with _images_lock():
        if image_recipe(client, BASE_TAG) != base_recipe():
            start = time.monotonic()
            build_base_image(client, log)
            _note(log, f"base image built in {time.monotonic() - start:.1f}s")
    return BASE_TAG


def ensure_notebook_image(client: docker.DockerClient, log: Path) -> str:
    """NOTEBOOK_TAG (and its base), built only if missing or stale. Returns the tag."""
    ensure_base_image(client, log)
    with _images_lock():
        if image_recipe(client, NOTEBOOK_TAG) != notebook_recipe():
            previous = _image_id(client, NOTEBOOK_TAG)
            start = time.monotonic()
            build_notebook_image(client, log)
            _note(log, f"notebook image built in {time.monotonic() - start:.1f}s")
            if previous and previous != _image_id(client, NOTEBOOK_TAG):
                # The stale image is untagged now: drop it (and its untagged parents) so
                # repeated runs with an edited recipe do not fill the disk. Only that image:
                # other sessions build their own images FROM the base.
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(previous, noprune=False)
    return NOTEBOOK_TAG


def _image_id(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


def _note(log: Path, message: str) -> None:
    with log.open("a") as out:
        out.write(f"docker_helpers: {message}\n")


@contextlib.contextmanager
def running_engine(timeout: int = 600) -> Iterator[docker.DockerClient]:
    """A client for a running engine, started with scripts/ci-docker.sh if none answers; a
    dockerd started here is stopped again at the end unless JHC_KEEP_DOCKERD=1 (faster reruns,
    or parallel sessions sharing it). Shared by the integration and e2e fixtures."""
    if os.geteuid() != 0:
        raise RuntimeError("the Docker engine fixture needs root (CI runs as root)")
    result = subprocess.run([str(CI_DOCKER), "start"], capture_output=True, text=True,
                            timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ci-docker.sh start failed ({result.returncode}):\n{result.stderr}")
    started = result.stdout.strip().splitlines()[-1:] == ["started"]
    client = docker.from_env(timeout=timeout)
    try:
        yield client
    finally:
        client.close()
        if started and os.environ.get("JHC_KEEP_DOCKERD") != "1":
            subprocess.run([str(CI_DOCKER), "stop"], timeout=120, check=False)
