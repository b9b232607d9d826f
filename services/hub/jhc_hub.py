"""Helpers for the hub's static, environment-driven ``jupyterhub_config.py``.

Why a separate module: ``jupyterhub_config.py`` is executed by traitlets with ``exec``, so code
living there cannot be imported by tests or reused. Everything that decides something lives here
as plain functions; the config file only calls :func:`configure`.

The list of variables, their meaning and defaults is in the docstring of
``jupyterhub_config.py`` and in ``docs/hub.md`` (a test keeps the three in sync).

Frozen contracts (changing them "loses" user data or breaks other components):

* the per-user home directory is ``<homes dir>/<username>`` where ``username`` is the normalised
  JupyterHub username, validated by :data:`USERNAME_RE` -- never DockerSpawner's escaping, which
  changed between versions;
* inside the user container the home is ``/home/<username>``, the shared directory
  ``/home/<username>/shared`` and every dataset ``/home/<username>/datasets/<name>`` (read-only);
* user containers run with primary gid :data:`NB_GID` (100, "users").
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import stat
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("jhc_hub")

#: Primary group of every platform user inside user containers (docker-stacks "users").
NB_GID = 100
#: Lowest uid a user container may run as; below are system accounts (and root).
MIN_UID = 1000
MAX_UID = 2**31 - 2
#: Valid, normalised usernames: lower case, POSIX-portable, at most 32 characters (useradd's
#: limit, used by the docker-stacks start script), not all digits. It cannot contain "/" and
#: cannot start with ".", so it is always a single, harmless path component.
USERNAME_PATTERN = r"^(?!\d+$)[a-z0-9_][a-z0-9_.-]{0,31}$"
USERNAME_RE = re.compile(USERNAME_PATTERN)
#: Names that must never become a container user or a home directory.
RESERVED_USERNAMES = frozenset({"root", "jovyan", "nobody"})
#: Image and dataset keys: also used as directory names inside the container.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
#: Capabilities the docker-stacks start.sh needs while it runs as root before dropping to NB_UID
#: with sudo: useradd/userdel rewrite /etc/shadow (root:shadow, so fchown -> CHOWN), sudo switches
#: uid and gid (SETUID, SETGID). No DAC_OVERRIDE: start.sh would need it only to `cd` into the
#: user's 0700 home as root, and the hook makes that home the container's working directory
#: instead (the runtime enters it before capabilities are dropped). Checked against an emulation
#: of start.sh's root path on a real engine; sudo then warns "unable to send audit message"
#: (no AUDIT_WRITE), which is harmless. After the switch the process has no capabilities.
USER_CONTAINER_CAPS = ("CHOWN", "SETUID", "SETGID")
#: The default container command of the docker-stacks images runs as root until start.sh drops
#: privileges; `no-new-privileges` is compatible because sudo is executed by uid 0 (it gains no
#: privilege from its setuid bit) and only ever lowers privileges.
USER_CONTAINER_SECURITY_OPT = ("no-new-privileges:true",)
#: The culler's permissions, as documented by jupyterhub-idle-culler (no user deletion).
CULLER_SCOPES = ("list:users", "read:users:activity", "read:servers", "delete:servers")
TLS_STRATEGIES = ("insecure", "before_bind", "on_connect")


class HubConfigError(ValueError):
    """A JHC_* variable is missing or malformed; the message names the variable."""

    def __init__(self, var: str, problem: str) -> None:
        super().__init__(f"{var}: {problem}")
        self.var = var


class HomeDirError(RuntimeError):
    """The user's home directory cannot be created or is not what we expect."""


# --------------------------------------------------------------------------------------------
# reading the environment


class Env:
    """Typed, validating accessors over an environment mapping (``os.environ`` in production).

    Every failure raises :class:`HubConfigError` naming the variable, so a broken deployment
    stops at hub start with a message the operator can act on.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ

    def raw(self, name: str) -> str | None:
        """The stripped value, or None when unset or empty (empty means "use the default")."""
        value = self._env.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def str(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def required(self, name: str, why: str = "") -> str:
        value = self.raw(name)
        if value is None:
            raise HubConfigError(name, "is required" + (f" ({why})" if why else "") + " but unset")
        return value

    def int(self, name: str, default: int, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise HubConfigError(name, f"{value!r} is not an integer") from None
        if not minimum <= number <= maximum:
            raise HubConfigError(name, f"{number} is outside {minimum}..{maximum}")
        return number

    def choice(self, name: str, default: str, choices: Iterable[str]) -> str:
        value = self.str(name, default).lower()
        allowed = tuple(choices)
        if value not in allowed:
            raise HubConfigError(name, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if not any(value.startswith(f"{scheme}://") for scheme in schemes) or value.endswith("//"):
            raise HubConfigError(name, f"{value!r} is not a {'/'.join(schemes)} URL")
        return value.rstrip("/")

    def abspath(self, name: str, default: str | None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if not value.startswith("/") or "{" in value or "}" in value or ":" in value:
            # braces would be treated as templates by DockerSpawner, ":" breaks docker binds
            raise HubConfigError(name, f"{value!r} must be an absolute path without {{}}:")
        return os.path.normpath(value)

    def usernames(self, name: str) -> set[str]:
        """A comma-separated list of usernames, normalised like JupyterHub does (lower case)."""
        names = set()
        for item in (self.raw(name) or "").split(","):
            if item.strip():
                try:
                    names.add(normalize_username(item))
                except ValueError as err:
                    raise HubConfigError(name, str(err)) from None
        return names

    def csv(self, name: str) -> list[str]:
        return [item.strip() for item in (self.raw(name) or "").split(",") if item.strip()]

    def json(self, name: str, default: Any) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise HubConfigError(name, f"is not valid JSON ({err.msg} at {err.pos})") from None

    def secret_file(self, name: str, why: str = "") -> str:
        """The content of the secret file named by variable ``name`` (required)."""
        return read_secret_file(self.required(name, why), name)


def parse_crypt_keys(text: str, var: str = "JHC_CRYPT_KEY_FILE") -> list[bytes]:
    """auth_state encryption keys: ";"-separated, each 32 bytes hex (openssl rand -hex 32)
    or url-safe base64; the first encrypts, the others still decrypt (key rotation)."""
    keys: list[bytes] = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        key: bytes | None = None
        if re.fullmatch(r"[0-9a-fA-F]{64}", item):
            key = bytes.fromhex(item)
        else:
            try:
                key = base64.urlsafe_b64decode(item.encode("ascii"))
            except (ValueError, UnicodeEncodeError):
                key = None
        if key is None or len(key) != 32:
            raise HubConfigError(var, "each key must be 32 bytes, hex or base64 encoded")
        keys.append(key)
    if not keys:
        raise HubConfigError(var, "holds no key")
    return keys


def read_secret_file(path: str, var: str) -> str:
    """Read a secret from a file that only its owner can read (mode 600 or stricter).

    Why files: environment variables leak into ``docker inspect``, child processes and crash
    reports; a file mounted read-only into the hub container does not. The mode check refuses
    a file that other accounts could read, as ssh does for keys.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        raise HubConfigError(var, f"cannot read secret file {path!r}: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise HubConfigError(var, f"secret file {path!r} is not a regular file")
    if st.st_mode & 0o077:
        raise HubConfigError(
            var, f"secret file {path!r} has mode {stat.S_IMODE(st.st_mode):o}; use 600"
        )
    with open(path, encoding="utf-8") as handle:
        value = handle.read().strip()
    if not value:
        raise HubConfigError(var, f"secret file {path!r} is empty")
    return value


# --------------------------------------------------------------------------------------------
# usernames and homes


def normalize_username(name: str) -> str:
    """Normalise and validate a username the way the hub does at login (lower case).

    Raises ValueError for anything that is not a safe, single path component.
    """
    normalized = name.strip().lower()
    validate_username(normalized)
    return normalized


def validate_username(name: str) -> str:
    """Return ``name`` if it is a valid normalised username, else raise ValueError."""
    if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
        raise ValueError(f"invalid username {name!r}: must match {USERNAME_PATTERN}")
    if name in RESERVED_USERNAMES:
        raise ValueError(f"invalid username {name!r}: reserved")
    return name


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


# --------------------------------------------------------------------------------------------
# images and datasets


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


def user_group_names(user: Any) -> set[str]:
    """Names of the JupyterHub groups of a hub User (LDAP groups are synced into them)."""
    return {group.name for group in getattr(user, "groups", None) or []}


def images_for_groups(images: Iterable[ImageChoice], groups: Iterable[str]) -> dict[str, str]:
    """{menu key: image reference} of the images a member of ``groups`` may start."""
    groups = set(groups)
    return {image.name: image.image for image in images if image.available_to(groups)}


def make_allowed_images(images: list[ImageChoice]) -> Callable[[Any], dict[str, str]]:
    """A DockerSpawner.allowed_images callable (supported since dockerspawner 12.1).

    It is evaluated on every spawn and every form render, so group changes apply at once.
    """

    def allowed_images(spawner: Any) -> dict[str, str]:
        return images_for_groups(images, user_group_names(spawner.user))

    return allowed_images


def make_options_form(images: list[ImageChoice]) -> Callable[[Any], str]:
    """Spawner.options_form callable: a menu of display names, or no form for <= 1 image."""

    def options_form(spawner: Any) -> str:
        groups = user_group_names(spawner.user)
        mine = [image for image in images if image.available_to(groups)]
        if len(mine) <= 1:
            return ""
        options = "\n".join(
            f'<option value="{html.escape(i.name)}">{html.escape(i.display_name)}</option>'
            for i in mine
        )
        return (
            '<label for="image">Select an image:</label>\n'
            '<select class="form-control" name="image" required autofocus>\n'
            f"{options}\n</select>"
        )

    return options_form


# --------------------------------------------------------------------------------------------
# the spawn hook


@dataclass(frozen=True)
class SpawnSettings:
    """Everything the pre-spawn hook needs, resolved from the environment at hub start."""

    images: tuple[ImageChoice, ...]
    homes_host_dir: str
    homes_hub_dir: str
    shared_host_dir: str | None
    datasets: tuple[Dataset, ...]
    uid_map: Mapping[str, int]
    derive_uids: bool = False  # GitHub logins: uid from the registry when not in uid_map
    uid_registry_url: str | None = None  # the hub's db_url (jhc_uid_registry)
    shared_hub_dir: str | None = None  # the shared dir as mounted into the hub, if it is


def container_home(username: str) -> str:
    """Home of the user inside the container. docker-stacks' start.sh renames jovyan to
    NB_USER with home /home/NB_USER; mounting there (not /home/jovyan/work) means start.sh
    finds the directory and does not copy /home/jovyan into it."""
    return f"/home/{validate_username(username)}"


def user_mounts(settings: SpawnSettings, username: str) -> tuple[dict[str, str], dict[str, str]]:
    """(rw volumes, ro volumes) as DockerSpawner {host path: container path} dicts."""
    home = container_home(username)
    rw = {str(home_dir_for(settings.homes_host_dir, username)): home}
    if settings.shared_host_dir:
        rw[settings.shared_host_dir] = f"{home}/shared"
    ro = {d.host_path: f"{home}/datasets/{d.name}" for d in settings.datasets}
    return rw, ro


def mountpoints(settings: SpawnSettings) -> list[str]:
    points = ["shared"] if settings.shared_host_dir else []
    return points + [f"datasets/{d.name}" for d in settings.datasets]


def uid_from_auth_state(auth_state: Mapping[str, Any] | None) -> int | None:
    if not auth_state:
        return None
    value = auth_state.get("uid_number")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def make_pre_spawn_hook(settings: SpawnSettings) -> Callable[[Any], Any]:
    """Spawner.pre_spawn_hook: pick the image, create the home, set uid/mounts/env.

    The uid comes from the LDAP uidNumber saved in auth_state at login, or, for GitHub
    users, from JHC_UIDS_JSON or else the hub's uid registry (jhc_uid_registry). Without one (an LDAP
    login whose auth_state was lost) the spawn is refused: running as the image's
    default uid would give every user the same owner on disk.
    """

    async def pre_spawn_hook(spawner: Any) -> None:
        user = spawner.user
        username = validate_username(user.name)
        auth_state = await user.get_auth_state()
        uid = uid_from_auth_state(auth_state)
        if uid is None:
            uid = settings.uid_map.get(username)
        if uid is None and settings.derive_uids and settings.uid_registry_url:
            # A GitHub login has no LDAP entry: a uid assigned once, kept in the hub's database.
            from jhc_uid_registry import registry

            uid = registry(settings.uid_registry_url, settings.uid_map).uid_for(username)
        if uid is None:
            raise HomeDirError(
                f"no uidNumber known for {username!r}: log out and in again, "
                "or add the user to JHC_UIDS_JSON"
            )
        allowed = images_for_groups(settings.images, user_group_names(user))
        if not allowed:
            raise HomeDirError(f"no notebook image is available to {username!r}")
        if not spawner.user_options.get("image"):
            # DockerSpawner falls back to DockerSpawner.image; make that one of the user's
            spawner.image = next(iter(allowed.values()))
        ensure_home(settings.homes_hub_dir, username, uid, NB_GID, mountpoints(settings))
        if settings.shared_hub_dir:
            ensure_shared(settings.shared_hub_dir)
        rw, ro = user_mounts(settings, username)
        spawner.volumes = rw
        spawner.read_only_volumes = ro
        spawner.notebook_dir = container_home(username)
        spawner.extra_create_kwargs = {
            **dict(spawner.extra_create_kwargs),
            "working_dir": container_home(username),
        }
        spawner.environment = {
            **dict(spawner.environment),
            "NB_USER": username,
            "NB_UID": str(uid),
            "NB_GID": str(NB_GID),
            "CHOWN_HOME": "no",
        }

    return pre_spawn_hook


# --------------------------------------------------------------------------------------------
# LDAP


def _ldap_authenticator_class() -> type:
    """Subclass of LDAPAuthenticator that also records the user's posixGroups and uidNumber.

    ldapauthenticator only reports the groups listed in allowed_groups; the image menu needs
    all of the user's groups, which are synced into JupyterHub groups (manage_groups).
    Defined lazily so this module imports without ldapauthenticator (e.g. for docs checks).
    """
    from ldap3 import SUBTREE
    from ldap3.utils.conv import escape_filter_chars
    from ldapauthenticator import LDAPAuthenticator
    from traitlets import Unicode

    class JhcLDAPAuthenticator(LDAPAuthenticator):
        group_search_base = Unicode(
            "", config=True, help="Base DN below which the user's posixGroups are searched."
        )

        def get_user_attributes(self, conn: Any, userdn: str) -> dict[str, Any]:
            attrs = dict(super().get_user_attributes(conn, userdn))
            uid = (attrs.get("uid") or [None])[0]
            groups: list[str] = []
            if uid and self.group_search_base:
                conn.search(
                    search_base=self.group_search_base,
                    search_scope=SUBTREE,
                    search_filter=(
                        f"(&(objectClass=posixGroup)(memberUid={escape_filter_chars(uid)}))"
                    ),
                    attributes=["cn"],
                )
                groups = sorted(str(entry.cn.value) for entry in conn.entries)
            attrs["jhc_posix_groups"] = groups
            return attrs

        async def authenticate(self, handler: Any, data: dict[str, Any]) -> Any:
            password = data.get("password")
            if password is None or not str(password).strip():
                # ldapauthenticator 2 refuses this too; an empty simple bind is an
                # "unauthenticated bind" that many servers accept (the old any-password trap)
                return None
            result = await super().authenticate(handler, data)
            if not result:
                return None
            auth_state = result["auth_state"]
            attrs = auth_state.get("user_attributes") or {}
            groups = attrs.pop("jhc_posix_groups", [])
            numbers = attrs.get("uidNumber") or []
            if not numbers:
                self.log.warning("Login of %s denied: no uidNumber in LDAP", data["username"])
                return None
            auth_state["uid_number"] = int(numbers[0])
            auth_state["groups"] = groups
            result["groups"] = groups
            return result

    return JhcLDAPAuthenticator


# --------------------------------------------------------------------------------------------
# the whole configuration


def _db(c: Any, env: Env) -> None:
    host = env.raw("JHC_DB_HOST")
    if host is None:
        c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"  # tests and local trials only
        return
    if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
        raise HubConfigError("JHC_DB_HOST", f"{host!r} is not a host name")
    port = env.int("JHC_DB_PORT", 5432, 1, 65535)
    name = env.str("JHC_DB_NAME", "jupyterhub")
    user = env.str("JHC_DB_USER", "jupyterhub")
    for var, value in (("JHC_DB_NAME", name), ("JHC_DB_USER", user)):
        if not re.fullmatch(r"[A-Za-z0-9_]+", value):
            raise HubConfigError(var, f"{value!r} must be letters, digits and _")
    password = env.secret_file("JHC_DB_PASSWORD_FILE", "JHC_DB_HOST is set")
    # The password must be in the URL: on a fresh database JupyterHub stamps the schema
    # with alembic, which builds its own engine from the URL alone, so a password given as
    # a connect argument is lost there ("fe_sendauth: no password supplied"; found by
    # tests/integration). JupyterHub redacts it when it logs the URL, SQLAlchemy masks it.
    quoted = urllib.parse.quote(password, safe="")
    c.JupyterHub.db_url = f"postgresql+psycopg2://{user}:{quoted}@{host}:{port}/{name}"


def _ldap(c: Any, env: Env) -> None:
    base = env.required("JHC_LDAP_BASE_DN", "JHC_AUTH=ldap")
    if "=" not in base or any(ch in base for ch in "{}()*"):
        raise HubConfigError("JHC_LDAP_BASE_DN", f"{base!r} is not a DN like dc=example,dc=org")
    user_base = env.str("JHC_LDAP_USER_BASE", f"ou=people,{base}")
    group_base = env.str("JHC_LDAP_GROUP_BASE", f"ou=groups,{base}")
    strategy = env.choice("JHC_LDAP_TLS_STRATEGY", "insecure", TLS_STRATEGIES)
    default_port = 636 if strategy == "on_connect" else 389

    c.JupyterHub.authenticator_class = _ldap_authenticator_class()
    a = c.LDAPAuthenticator
    a.server_address = env.str("JHC_LDAP_SERVER", "ldap")
    a.server_port = env.int("JHC_LDAP_PORT", default_port, 1, 65535)
    a.tls_strategy = strategy
    if strategy != "insecure":
        import ssl

        # ldap3's Tls() does not validate certificates unless told to
        ca_file = env.required("JHC_LDAP_CA_FILE", f"JHC_LDAP_TLS_STRATEGY={strategy}")
        a.tls_kwargs = {"validate": ssl.CERT_REQUIRED, "ca_certs_file": ca_file}
    # Bind as the user with a fixed DN template: the password is checked by the directory
    # itself and the hub holds no directory credential at all. A lookup through a service
    # account would put a password in the hub and a search in the login path for no gain,
    # since this project writes every user at uid=<name>,<user base>.
    a.lookup_dn = False
    a.bind_dn_template = [f"uid={{username}},{user_base}"]
    a.user_search_base = user_base
    a.user_attribute = "uid"
    a.valid_username_regex = USERNAME_PATTERN
    a.use_lookup_dn_username = False
    a.auth_state_attributes = ["uid", "uidNumber", "gidNumber"]
    c.JhcLDAPAuthenticator.group_search_base = group_base
    groups = env.csv("JHC_ALLOWED_GROUPS")
    for group in groups:
        if not NAME_RE.fullmatch(group.lower()):
            raise HubConfigError("JHC_ALLOWED_GROUPS", f"{group!r} is not a group name")
    a.allowed_groups = [f"cn={group},{group_base}" for group in groups]
    a.group_search_filter = "(&(objectClass=posixGroup)(memberUid={uid}))"
    a.group_attributes = ["memberUid"]
    c.Authenticator.manage_groups = True
    # every LDAP account is a platform user declared in stack config; without other allow
    # rules, having an account (and the right password) is the allow rule
    c.Authenticator.allow_all = not groups and not env.usernames("JHC_ALLOWED_USERS")


def _github(c: Any, env: Env, public_url: str | None) -> None:
    from oauthenticator.github import GitHubOAuthenticator

    c.JupyterHub.authenticator_class = GitHubOAuthenticator
    g = c.GitHubOAuthenticator
    g.client_id = env.required("JHC_GITHUB_CLIENT_ID", "JHC_AUTH=github")
    g.client_secret = env.secret_file("JHC_GITHUB_CLIENT_SECRET_FILE", "JHC_AUTH=github")
    callback = env.url("JHC_GITHUB_CALLBACK_URL", None, ("https", "http"))
    if callback is None:
        if public_url is None:
            raise HubConfigError(
                "JHC_GITHUB_CALLBACK_URL", "is required (or JHC_PUBLIC_URL) for JHC_AUTH=github"
            )
        callback = f"{public_url}/hub/oauth_callback"
    g.oauth_callback_url = callback
    orgs = set(env.csv("JHC_GITHUB_ALLOWED_ORGS"))
    g.allowed_organizations = orgs
    if orgs:
        g.scope = ["read:org"]  # else only public org membership is visible
    # oauthenticator >= 16 admits nobody without an allow rule; allow_all is never used here
    g.allow_all = False
    if not orgs and not env.usernames("JHC_ALLOWED_USERS"):
        raise HubConfigError(
            "JHC_GITHUB_ALLOWED_ORGS",
            "JHC_AUTH=github needs JHC_GITHUB_ALLOWED_ORGS or JHC_ALLOWED_USERS",
        )
    groups = env.json("JHC_GROUPS_JSON", {})
    if not isinstance(groups, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in groups.items()
    ):
        raise HubConfigError("JHC_GROUPS_JSON", 'must be {"group": ["user", ...]}')
    try:
        c.JupyterHub.load_groups = {
            name: {"users": sorted(normalize_username(u) for u in members)}
            for name, members in groups.items()
        }
    except (ValueError, AttributeError) as err:
        raise HubConfigError("JHC_GROUPS_JSON", str(err)) from None


def _uid_map(env: Env) -> dict[str, int]:
    raw = env.json("JHC_UIDS_JSON", {})
    if not isinstance(raw, dict):
        raise HubConfigError("JHC_UIDS_JSON", 'must be {"user": uid, ...}')
    result: dict[str, int] = {}
    for name, uid in raw.items():
        try:
            user = normalize_username(name)
        except ValueError as err:
            raise HubConfigError("JHC_UIDS_JSON", str(err)) from None
        if not isinstance(uid, int) or isinstance(uid, bool) or not MIN_UID <= uid <= MAX_UID:
            raise HubConfigError("JHC_UIDS_JSON", f"uid of {name!r} must be {MIN_UID}..{MAX_UID}")
        result[user] = uid
    return result


def _spawner(c: Any, env: Env) -> None:
    images = parse_images(env.json("JHC_IMAGES_JSON", None) or None)
    homes_host = env.abspath("JHC_HOMES_HOST_DIR", "/srv/jupyterhub/homes")
    homes_hub = env.abspath("JHC_HOMES_HUB_DIR", "/homes")
    shared: str | None = None
    if env.raw("JHC_SHARED_HOST_DIR") != "none":
        shared = env.abspath("JHC_SHARED_HOST_DIR", "/srv/jupyterhub/shared")
    datasets = parse_datasets(env.json("JHC_DATASETS_JSON", []))
    assert homes_host is not None and homes_hub is not None
    settings = SpawnSettings(
        images=tuple(images),
        homes_host_dir=homes_host,
        homes_hub_dir=homes_hub,
        shared_host_dir=shared,
        datasets=tuple(datasets),
        uid_map=_uid_map(env),
        derive_uids=env.str("JHC_AUTH", "ldap") == "github",
        uid_registry_url=c.JupyterHub.db_url,
        shared_hub_dir=env.abspath("JHC_SHARED_HUB_DIR", None) if shared else None,
    )

    c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
    d = c.DockerSpawner
    d.image = images[0].image  # replaced per user by the pre-spawn hook
    d.allowed_images = make_allowed_images(images)
    d.options_form = make_options_form(images)
    d.pull_policy = "never"  # images are built on the host; nothing is pulled
    d.network_name = env.str("JHC_NETWORK", "jhc-frontend")
    d.use_internal_ip = True
    d.remove = True  # containers are disposable; the data is in the bind mounts
    d.volumes = {}
    d.read_only_volumes = {}
    d.extra_create_kwargs = {"user": "root"}  # docker-stacks start.sh drops to NB_UID
    host_config: dict[str, Any] = {
        "security_opt": list(USER_CONTAINER_SECURITY_OPT),
        "cap_drop": ["ALL"],
        "cap_add": list(USER_CONTAINER_CAPS),
    }
    pids = env.int("JHC_PIDS_LIMIT", 1024, 0)
    if pids:
        host_config["pids_limit"] = pids
    d.extra_host_config = host_config
    mem = env.str("JHC_MEM_LIMIT", "2G")
    if mem != "0":
        if not re.fullmatch(r"[0-9]+[KMGT]?", mem):
            raise HubConfigError("JHC_MEM_LIMIT", f"{mem!r} is not a size like 2G or 512M")
        d.mem_limit = mem
    cpu = env.str("JHC_CPU_LIMIT", "1")
    try:
        cpu_value = float(cpu)
    except ValueError:
        raise HubConfigError("JHC_CPU_LIMIT", f"{cpu!r} is not a number of CPUs") from None
    if not 0 <= cpu_value <= 1024:
        raise HubConfigError("JHC_CPU_LIMIT", f"{cpu!r} is out of range")
    if cpu_value:
        d.cpu_limit = cpu_value

    s = c.Spawner
    s.pre_spawn_hook = make_pre_spawn_hook(settings)
    s.disable_user_config = True
    s.env_keep = []  # nothing from the hub's environment reaches user containers
    s.environment = {}
    s.start_timeout = env.int("JHC_START_TIMEOUT", 120, 10, 3600)
    s.http_timeout = env.int("JHC_START_TIMEOUT", 120, 10, 3600)


def _culler(c: Any, env: Env) -> None:
    timeout = env.int("JHC_CULL_TIMEOUT", 3600, 0)
    every = env.int("JHC_CULL_EVERY", 300, 0)
    if not timeout:
        c.JupyterHub.services = []
        c.JupyterHub.load_roles = []
        return
    command = [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={timeout}"]
    if every:
        command.append(f"--cull-every={every}")
    c.JupyterHub.services = [{"name": "idle-culler", "command": command}]
    c.JupyterHub.load_roles = [
        {
            "name": "idle-culler",
            "description": "Stop idle user servers",
            "scopes": list(CULLER_SCOPES),
            "services": ["idle-culler"],
        }
    ]


def configure(c: Any, environ: Mapping[str, str]) -> None:
    """Fill the traitlets config ``c`` from ``environ``. Raises HubConfigError on bad input."""
    env = Env(environ)

    # hub <-> proxy <-> user containers
    port = env.int("JHC_HUB_PORT", 8081, 1, 65535)
    connect_host = env.str("JHC_HUB_CONNECT_HOST", "jupyterhub")
    if not re.fullmatch(r"[A-Za-z0-9.-]+", connect_host):
        raise HubConfigError("JHC_HUB_CONNECT_HOST", f"{connect_host!r} is not a host name")
    c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{port}"
    c.JupyterHub.hub_connect_url = f"http://{connect_host}:{port}"
    c.JupyterHub.bind_url = "http://:8000"  # where the proxy container listens
    public_url = env.url("JHC_PUBLIC_URL", None, ("https", "http"))
    if public_url:
        c.JupyterHub.public_url = public_url
    c.JupyterHub.proxy_class = "configurable-http-proxy"
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = env.url(
        "JHC_PROXY_API_URL", "http://proxy:8001", ("http", "https")
    )
    c.ConfigurableHTTPProxy.auth_token = env.secret_file("JHC_PROXY_AUTH_TOKEN_FILE")
    # the proxy and the user containers outlive a hub restart
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.JupyterHub.allow_named_servers = False  # one container per user <-> one home
    c.JupyterHub.authenticate_prometheus = True

    # secrets and state
    cookie_path = env.required("JHC_COOKIE_SECRET_FILE")
    cookie = read_secret_file(cookie_path, "JHC_COOKIE_SECRET_FILE")
    if not re.fullmatch(r"[0-9a-fA-F]{64,}", cookie):
        raise HubConfigError("JHC_COOKIE_SECRET_FILE", "must hold >= 32 hex-encoded bytes")
    c.JupyterHub.cookie_secret_file = cookie_path
    crypt_key = env.secret_file("JHC_CRYPT_KEY_FILE")
    c.CryptKeeper.keys = parse_crypt_keys(crypt_key)
    c.Authenticator.enable_auth_state = True
    _db(c, env)

    # who may log in
    c.Authenticator.username_pattern = USERNAME_PATTERN
    admins = env.usernames("JHC_ADMIN_USERS")
    allowed = env.usernames("JHC_ALLOWED_USERS")
    c.Authenticator.admin_users = admins
    # admins are always allowed (JupyterHub does the same once any allow list is set)
    c.Authenticator.allowed_users = allowed | admins if allowed else set()
    c.Authenticator.blocked_users = env.usernames("JHC_BLOCKED_USERS")
    # the allow list is authoritative: removing a name from it revokes access even though
    # the user still exists in the hub database
    c.Authenticator.allow_existing_users = False
    auth = env.choice("JHC_AUTH", "ldap", ("ldap", "github"))
    if auth == "ldap":
        _ldap(c, env)
    else:
        _github(c, env, public_url)

    _spawner(c, env)
    _culler(c, env)
