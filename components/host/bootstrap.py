"""Host bootstrap: renders the cloud-init user_data that turns a fresh VM into a docker host.

Why a pure renderer: the Host components call it inside ``.apply`` once the data volume id
is known, and tests call it directly. The output depends on :class:`BootstrapParams` only,
so a change in the service layer can never change user_data (which would replace the VM).
The templates and scripts are real files in ``cloud-init/`` so they can be linted and run.
user_data is served by the metadata service to anything on the VM: it carries no secret.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

import jinja2

CLOUD_INIT_DIR = Path(__file__).resolve().parents[2] / "cloud-init"

#: ext4 label given to the data volume when the bootstrap formats it.
DATA_FS_LABEL = "jhc-data"

#: AWS refuses user_data above 16 KiB; stay clear of it on every cloud.
USER_DATA_MAX_BYTES = 16384


@dataclass(frozen=True)
class BootstrapParams:
    """Host-level settings that shape the VM (and nothing else).

    ``data_device_candidates`` are the paths under which the attached data volume may
    show up, most specific first (see :func:`data_device_candidates_openstack` and
    :func:`data_device_candidates_aws`).
    """

    admin_user: str
    data_dir: str
    data_device_candidates: tuple[str, ...]
    bytes_per_inode: int
    nofile_limit: int
    nproc_limit: int
    docker_log_max_size: str
    docker_log_max_files: int
    prune_schedule: str
    prune_until: str


# Target path, permissions and source file (".j2" sources are rendered with the params).
#: (path, mode, template) every VM of the stack gets, the main host and the workers alike
HOST_HARDENING_FILES: tuple[tuple[str, str, str], ...] = (
    ("/etc/systemd/system/jhc-metadata-block.service", "0644", "jhc-metadata-block.service"),
    ("/etc/systemd/system/jhc-docker-prune.service", "0644", "jhc-docker-prune.service.j2"),
    ("/etc/systemd/system/jhc-docker-prune.timer", "0644", "jhc-docker-prune.timer.j2"),
    ("/etc/security/limits.d/90-jupyterhub-cloud.conf", "0644", "limits.conf.j2"),
    ("/etc/ssh/sshd_config.d/10-jupyterhub-cloud.conf", "0644", "sshd-jupyterhub-cloud.conf"),
    ("/etc/apt/apt.conf.d/52jupyterhub-cloud-auto-upgrades", "0644", "apt-auto-upgrades.conf"),
)
_FILES: tuple[tuple[str, str, str], ...] = (
    ("/etc/jupyterhub-cloud/bootstrap.env", "0644", "bootstrap.env.j2"),
    ("/usr/local/sbin/jhc-data-volume", "0755", "jhc-data-volume.sh"),
    ("/usr/local/sbin/jhc-host-setup", "0755", "jhc-host-setup.sh"),
    ("/usr/local/sbin/jhc-metadata-block", "0755", "jhc-metadata-block.sh"),
    ("/etc/docker/daemon.json", "0644", "daemon.json.j2"),
    ("/etc/systemd/system/docker.service.d/10-jupyterhub-cloud.conf", "0644",
     "docker-service-dropin.conf.j2"),
    *HOST_HARDENING_FILES,
)

_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_ABS_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")
_DEVICE = re.compile(r"/dev/[A-Za-z0-9._:+@=,/-]+")
_SIZE = re.compile(r"[1-9][0-9]*[kmg]")
_DURATION = re.compile(r"([0-9]+[hms])+")
_CALENDAR = re.compile(r"[A-Za-z0-9*:,./~+ -]+")
_VOLUME_ID = re.compile(r"[A-Za-z0-9-]+")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"BootstrapParams.{name} must be an integer in [{low}, {high}], "
                         f"got {value!r}")


def _check_re(name: str, value: object, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"BootstrapParams.{name} must be {what}, got {value!r}")


def validate_params(params: BootstrapParams) -> None:
    """Reject values that would break the shell, systemd or YAML files they land in.

    Why: the values are pasted into several file formats; a stray space or quote would
    produce a host that boots but silently misbehaves.
    """
    _check_re("admin_user", params.admin_user, _USER, "a POSIX user name")
    _check_re("data_dir", params.data_dir, _ABS_PATH, "an absolute path without spaces")
    if any(part in (".", "..") for part in params.data_dir.split("/")):
        raise ValueError(f"BootstrapParams.data_dir must be normalised, got {params.data_dir!r}")
    cands = params.data_device_candidates
    if not isinstance(cands, tuple) or not cands:
        raise ValueError("BootstrapParams.data_device_candidates must be a non-empty tuple")
    for dev in cands:
        _check_re("data_device_candidates", dev, _DEVICE, "/dev/... paths without spaces")
    # mke2fs accepts 1 KiB .. 64 MiB per inode.
    _check_int("bytes_per_inode", params.bytes_per_inode, 1024, 64 * 1024 * 1024)
    # Above the kernel's default fs.nr_open (1048576) systemd and dockerd fail to start.
    _check_int("nofile_limit", params.nofile_limit, 1024, 1048576)
    _check_int("nproc_limit", params.nproc_limit, 1024, 4194304)
    _check_re("docker_log_max_size", params.docker_log_max_size, _SIZE,
              "a size like '50m' (k, m or g)")
    _check_int("docker_log_max_files", params.docker_log_max_files, 1, 100)
    _check_re("prune_schedule", params.prune_schedule, _CALENDAR,
              "a systemd OnCalendar expression")
    _check_re("prune_until", params.prune_until, _DURATION, "a duration like '168h'")


@functools.cache
def _environment() -> jinja2.Environment:
    """One per process: it keeps the compiled templates (re-read when a file changes)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(CLOUD_INIT_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["shquote"] = shlex.quote
    return env


def _file_content(env: jinja2.Environment, source: str, context: dict[str, object]) -> str:
    if source.endswith(".j2"):
        text = env.get_template(source).render(context)
    else:
        text = (CLOUD_INIT_DIR / source).read_text(encoding="utf-8")
    # Embedded as a YAML literal block ("|"): that keeps exactly one final newline and
    # needs a first line that does not start with a space.
    if not text.endswith("\n") or text.endswith("\n\n") or text[:1].isspace():
        raise ValueError(f"cloud-init/{source}: must end with one newline, start non-blank")
    return text


def render_user_data(params: BootstrapParams) -> str:
    """Return the ``#cloud-config`` user_data for a host with these settings.

    Deterministic (same params, same bytes) so that Pulumi sees no diff between runs.
    """
    validate_params(params)
    env = _environment()
    context: dict[str, object] = {f.name: getattr(params, f.name) for f in fields(params)}
    context["fs_label"] = DATA_FS_LABEL
    files = [
        {"path": path, "permissions": mode, "content": _file_content(env, source, context)}
        for path, mode, source in _FILES
    ]
    text = env.get_template("user-data.yaml.j2").render(context, files=files)
    size = len(text.encode("utf-8"))
    if size > USER_DATA_MAX_BYTES:
        raise ValueError(f"rendered user_data is {size} bytes, above {USER_DATA_MAX_BYTES}")
    return text


def _check_volume_id(volume_id: str) -> None:
    if not isinstance(volume_id, str) or not _VOLUME_ID.fullmatch(volume_id):
        raise ValueError(f"volume id must be letters, digits and '-', got {volume_id!r}")


def data_device_candidates_openstack(volume_id: str) -> tuple[str, ...]:
    """Where a Cinder volume appears in the guest, most specific first.

    virtio-blk exposes the volume id as serial, cut to 20 characters; virtio-scsi exposes
    it through QEMU's SCSI identifiers. /dev/vdb is the last resort for hypervisors that
    give no serial (the volume script only takes it if it is blank or carries our label,
    since it may be an ephemeral disk or config drive).
    """
    _check_volume_id(volume_id)
    return (
        f"/dev/disk/by-id/virtio-{volume_id[:20]}",
        f"/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_{volume_id}",
        "/dev/vdb",
    )


def data_device_candidates_aws(volume_id: str, device_name: str) -> tuple[str, ...]:
    """Where an EBS volume attached as ``device_name`` appears, most specific first.

    Nitro instances show EBS as NVMe with the volume id (without "-") as serial; Xen
    instances rename /dev/sdX to /dev/xvdX; some images keep /dev/sdX.
    """
    _check_volume_id(volume_id)
    match = re.fullmatch(r"(?:/dev/)?(?:sd|xvd)([a-z]{1,2})", device_name or "")
    if not match:
        raise ValueError(f"device name must look like /dev/sdf or /dev/xvdf, got {device_name!r}")
    letter = match.group(1)
    return (
        f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{volume_id.replace('-', '')}",
        f"/dev/xvd{letter}",
        f"/dev/sd{letter}",
    )
