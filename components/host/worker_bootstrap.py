"""Swarm worker bootstrap: the cloud-init user_data of a worker VM.

The same image, packages, limits, SSH policy, metadata block and prune timer as the main host
(the same files from cloud-init/), but no data volume: Docker keeps its images on the root disk,
and the user data is mounted from the main host over NFSv4 (components/host/nfs.py). The only
per-stack value is the manager's private address, an Output rendered in an apply. No secret.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from components.config import HostSettings
from components.host.bootstrap import (
    HOST_HARDENING_FILES,
    USER_DATA_MAX_BYTES,
    BootstrapParams,
    _environment,
    _file_content,
    validate_params,
)
from components.host.nfs import EXPORTS, render_worker_fstab
from components.host.security import REGISTRY_PORT  # the platform's registry (plain HTTP)

# RFC 1918, RFC 6598 (shared address space, used by some clouds' tenant networks), IPv6 ULA.
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))

# Target path, permissions and source file; the shared ones are the main host's very files.
_WORKER_FILES: tuple[tuple[str, str, str], ...] = (
    ("/etc/jupyterhub-cloud/worker.env", "0644", "worker.env.j2"),
    ("/usr/local/sbin/jhc-worker-setup", "0755", "jhc-worker-setup.sh"),
    ("/usr/local/sbin/jhc-metadata-block", "0755", "jhc-metadata-block.sh"),
    ("/etc/docker/daemon.json", "0644", "worker-daemon.json.j2"),
    ("/etc/systemd/system/docker.service.d/10-jupyterhub-cloud.conf", "0644",
     "worker-docker-dropin.conf.j2"),
    *HOST_HARDENING_FILES,
)
NFS_FSTAB = "/etc/jupyterhub-cloud/nfs.fstab"


@dataclass(frozen=True)
class WorkerParams:
    """The main host's bootstrap settings (limits, logs, prune) plus the manager's address."""

    host: BootstrapParams
    manager_address: str


def render_worker_user_data(params: WorkerParams) -> str:
    """The ``#cloud-config`` of a worker; deterministic, like the main host's."""
    validate_params(params.host)
    address = ipaddress.ip_address(params.manager_address)
    if not any(address in net for net in PRIVATE_NETWORKS):
        # NFS and the plain-HTTP registry must never travel over a public address.
        raise ValueError(f"manager address must be private, got {params.manager_address}")
    env = _environment()
    context: dict[str, object] = {
        "admin_user": params.host.admin_user, "data_dir": params.host.data_dir,
        "nofile_limit": params.host.nofile_limit, "nproc_limit": params.host.nproc_limit,
        "docker_log_max_size": params.host.docker_log_max_size,
        "docker_log_max_files": params.host.docker_log_max_files,
        "prune_schedule": params.host.prune_schedule, "prune_until": params.host.prune_until,
        "manager_address": params.manager_address, "registry_port": REGISTRY_PORT,
        "exports": EXPORTS}
    files = [{"path": path, "permissions": mode, "content": _file_content(env, source, context)}
             for path, mode, source in _WORKER_FILES]
    files.append({"path": NFS_FSTAB, "permissions": "0644",
                  "content": render_worker_fstab(params.host.data_dir, params.manager_address)})
    text = env.get_template("worker-user-data.yaml.j2").render(context, files=files)
    if len(text.encode()) > USER_DATA_MAX_BYTES:
        raise ValueError(f"rendered worker user_data is above {USER_DATA_MAX_BYTES} bytes")
    return text


def worker_user_data(host: HostSettings, manager_address: str) -> str:
    """A worker's user_data from the host-layer settings (called inside an apply)."""
    return render_worker_user_data(WorkerParams(BootstrapParams(
        admin_user=host.ssh_user, data_dir=host.data_dir,
        data_device_candidates=("/dev/null",),  # unused: a worker has no data volume
        bytes_per_inode=host.bytes_per_inode, nofile_limit=host.nofile_limit,
        nproc_limit=host.nproc_limit, docker_log_max_size=host.docker_log_max_size,
        docker_log_max_files=host.docker_log_max_files, prune_schedule=host.prune_schedule,
        prune_until=host.prune_until), manager_address))
