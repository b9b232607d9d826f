"""The image menu and the pre-spawn hook: which image a user may start, as which uid, with
which mounts. Settings come resolved from jhc_settings; homes are made by jhc_homes."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jhc_homes import NB_GID, HomeDirError, ensure_home, ensure_shared, home_dir_for
from jhc_menu import ImageChoice
from jhc_settings import SpawnSettings
from jhc_values import validate_login as validate_username


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
        if is_swarm_spawner(spawner):
            # SwarmSpawner hands extra_create_kwargs to create_service, the container's own
            # settings go in extra_container_spec (dockerspawner 14 SwarmSpawner.create_object)
            spawner.extra_container_spec = {
                **dict(spawner.extra_container_spec),
                "workdir": container_home(username),
            }
        else:
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



def is_swarm_spawner(spawner: Any) -> bool:
    """SwarmSpawner runs each server as a Swarm service (its ``object_type``, dockerspawner 14)."""
    return getattr(spawner, "object_type", "container") == "service"


def docker_spawner_class(swarm: bool = False) -> type:
    """DockerSpawner (or SwarmSpawner with ``swarm``) that treats an interrupted spawn as
    stopped, so it is cleaned up at once.

    JupyterHub records a server with a placeholder address (orm.Server: ip "", a random port)
    before ``Spawner.start`` and writes the real one when start returns (jupyterhub/user.py,
    User.spawn). A hub that dies in between leaves the placeholder; at the next start
    ``check_spawner`` (jupyterhub/app.py) sees DockerSpawner.poll report the container running
    and waits ``http_timeout`` (120 s) on the placeholder URL before stopping it, and the user
    cannot start meanwhile. Here the container is removed (the home kept) and the server
    reported as stopped, so the hub forgets it and the user can start again right away.
    Defined lazily so this module imports without dockerspawner.
    """
    from dockerspawner import DockerSpawner, SwarmSpawner

    class JhcDockerSpawner(SwarmSpawner if swarm else DockerSpawner):  # type: ignore[misc]
        async def poll(self) -> Any:
            server = self.server
            interrupted = server is not None and not server.ip and not self._spawn_pending
            status = await super().poll()  # finds the container by name (sets its id)
            if not interrupted or status is not None:
                return status
            # start() never returned: the hub was stopped during the spawn. User.stop does
            # not stop a server that polls as stopped, so remove the container here
            # (DockerSpawner.remove is set; the home is a bind mount and stays).
            self.log.warning("%s: spawn was interrupted (no address recorded); removing the "
                             "container so the user can start again", self._log_name)
            await self.stop(now=True)
            return "interrupted spawn"

    if not swarm:
        return JhcDockerSpawner
    from traitlets import Int

    class JhcSwarmSpawner(JhcDockerSpawner):
        """SwarmSpawner plus a process limit: dockerspawner 14 builds the service's Resources
        with docker-py 7.1's ``Resources``, which has no pids argument, although the Engine API
        (1.41, Docker 20.10) accepts ``TaskTemplate.Resources.Limits.Pids``; it is added to the
        request here (tests/integration/test_swarm.py reads pids.max inside a user server)."""

        pids_limit = Int(0, config=True, help="process limit per user service; 0 = none")

        def docker(self, method: str, *args: Any, **kwargs: Any) -> Any:
            if method == "create_service" and self.pids_limit:
                resources = kwargs["task_template"].setdefault("Resources", {})
                resources.setdefault("Limits", {})["Pids"] = self.pids_limit
            return super().docker(method, *args, **kwargs)

        async def get_ip_and_port(self) -> tuple[str, int]:
            """The running task's own address on the overlay, not the service name.

            SwarmSpawner returns the service name (use_internal_ip), resolved by Docker's
            embedded DNS. After a stop and a start on another node, that name kept resolving
            to the removed task's address for the whole start timeout
            (tests/integration/test_swarm.py found it); the task list is authoritative.
            """
            task = await self.get_task()
            for attachment in (task or {}).get("NetworksAttachments") or []:
                if attachment["Network"]["Spec"]["Name"] == self.network_name:
                    return attachment["Addresses"][0].split("/")[0], self.port
            raise RuntimeError(f"{self.service_name}: no address on {self.network_name}")

    return JhcSwarmSpawner
