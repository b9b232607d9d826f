"""Per-user home directories, created by the hub (running as root) before each spawn.

Frozen contracts (changing them "loses" user data or breaks other components):

* the per-user home directory is ``<homes dir>/<username>`` where ``username`` is the normalised
  JupyterHub username, validated by ``jhc_values.LOGIN_PATTERN`` -- never DockerSpawner's
  escaping, which changed between versions;
* inside the user container the home is ``/home/<username>``, the shared directory
  ``/home/<username>/shared`` and every dataset ``/home/<username>/datasets/<name>`` (read-only);
* user containers run with primary gid :data:`NB_GID` (100, "users").
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from jhc_settings import MAX_UID, MIN_UID
from jhc_values import normalize_login, validate_login

log = logging.getLogger("jhc_hub")

#: Primary group of every platform user inside user containers (docker-stacks "users").
NB_GID = 100


class HomeDirError(RuntimeError):
    """The user's home directory cannot be created or is not what we expect."""


#: The one definition of a login name (jhc_values), under the names the hub code uses.
normalize_username = normalize_login
validate_username = validate_login


def home_dir_for(homes_dir: str | os.PathLike[str], username: str) -> Path:
    """The frozen per-user directory: ``<homes_dir>/<username>``. Do not change."""
    return Path(homes_dir) / validate_username(username)


def _mkdir_owned(parent_fd: int, name: str, uid: int, gid: int, mode: int) -> bool:
    """Create ``name`` below an open directory (no symlink following), owned by uid:gid.

    Returns True if created. An existing symlink or non-directory raises HomeDirError, so a
    user cannot make the hub (root) create or chown something outside their home.
    """
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.mkdir(name, mode, dir_fd=parent_fd)
        if os.geteuid() == 0:
            os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
        elif os.geteuid() != uid:
            log.warning("not root: %s left owned by uid %d instead of %d", name, os.geteuid(), uid)
        os.chmod(name, mode, dir_fd=parent_fd)  # mkdir's mode is reduced by the umask
        return True
    if not stat.S_ISDIR(st.st_mode):
        raise HomeDirError(f"{name!r} exists and is not a directory (or is a symlink)")
    return False


def ensure_shared(path: str | os.PathLike[str]) -> None:
    """Make the shared directory group-writable for all users (gid 100, setgid 2775).

    Why here too: on a cloud host the bootstrap creates it so, but on the local stack Docker
    creates a missing bind source as root:root 0755, where nobody could write. Only a
    root-owned directory is adjusted; anything an admin changed on purpose is left alone.
    """
    os.makedirs(path, mode=0o2775, exist_ok=True)
    st = os.stat(path, follow_symlinks=False)
    if st.st_uid == 0 and os.geteuid() == 0 and (st.st_gid, stat.S_IMODE(st.st_mode)) != (NB_GID, 0o2775):
        os.chown(path, 0, NB_GID, follow_symlinks=False)
        os.chmod(path, 0o2775)


def ensure_home(
    homes_dir: str | os.PathLike[str],
    username: str,
    uid: int,
    gid: int = NB_GID,
    mountpoints: Iterable[str] = (),
) -> Path:
    """Create the user's home ``<homes_dir>/<username>`` (uid:gid, 0700) before the spawn.

    Why: Docker creates a missing bind-mount source as root:root, and the user, running as
    their uid, then cannot write their own home (DockerSpawner #160/#453). ``mountpoints``
    are relative directories inside the home (``shared``, ``datasets/<name>``) that Docker
    would otherwise create root-owned; they are created owned by the user too.

    An existing home owned by another uid is refused rather than chowned: that usually means
    a uid was reassigned, and silently giving one user's files to another is worse than a
    failed spawn. The one exception is an empty root-owned directory (the classic trap
    above), which is repaired.
    """
    validate_username(username)
    if not MIN_UID <= uid <= MAX_UID:
        raise HomeDirError(f"refusing uid {uid} for {username!r}: must be {MIN_UID}..{MAX_UID}")
    base_fd = os.open(homes_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _mkdir_owned(base_fd, username, uid, gid, 0o700)
        home_fd = os.open(username, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=base_fd)
    finally:
        os.close(base_fd)
    try:
        st = os.fstat(home_fd)
        if st.st_uid != uid:
            if st.st_uid == 0 and not os.listdir(home_fd) and os.geteuid() == 0:
                log.warning("repairing empty root-owned home of %s", username)
                os.fchown(home_fd, uid, gid)
                os.fchmod(home_fd, 0o700)
            elif os.geteuid() == 0:
                raise HomeDirError(
                    f"home of {username!r} is owned by uid {st.st_uid}, expected {uid}; "
                    "an administrator must fix the ownership"
                )
        for rel in mountpoints:
            _ensure_relative_dirs(home_fd, rel, uid, gid)
    finally:
        os.close(home_fd)
    return home_dir_for(homes_dir, username)


def _ensure_relative_dirs(root_fd: int, rel: str, uid: int, gid: int) -> None:
    parts = [part for part in rel.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        raise HomeDirError(f"invalid mount point {rel!r}")
    fd = os.dup(root_fd)
    try:
        for part in parts:
            _mkdir_owned(fd, part, uid, gid, 0o755)
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    finally:
        os.close(fd)

