"""A swarm worker's bootstrap and both ends of the NFS share, rendered and checked for real where
this machine allows: `cloud-init schema`, shellcheck, and jhc-worker-setup run on a scratch fstab.

Not exercised here: the NFS mount itself (this kernel has no nfs filesystem) and the NFS server.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_bootstrap import OPENSTACK, files_of

from components.host.bootstrap import render_user_data
from components.host.nfs import render_exports, render_worker_fstab
from components.host.worker_bootstrap import WorkerParams, render_worker_user_data
from harness import ROOT, load_yaml

MANAGER = "10.0.0.10"
PARAMS = WorkerParams(OPENSTACK, MANAGER)


def worker_files(params: WorkerParams = PARAMS) -> dict[str, dict]:
    doc = load_yaml(render_worker_user_data(params))
    return {f["path"]: f for f in doc["write_files"]}


@pytest.mark.needs("cloud-init")
def test_real_cloud_init_schema_accepts_it(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text(render_worker_user_data(PARAMS))
    run = subprocess.run(["cloud-init", "schema", "--config-file", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "Valid cloud-config" in run.stdout, run.stdout + run.stderr


def test_shape_and_shared_files_with_the_main_host() -> None:
    doc = load_yaml(render_worker_user_data(PARAMS))
    assert set(doc) == {"ssh_pwauth", "disable_root", "package_update", "package_upgrade",
                        "packages", "write_files", "runcmd"}
    assert doc["ssh_pwauth"] is False and doc["disable_root"] is True
    assert doc["runcmd"] == [["/usr/local/sbin/jhc-worker-setup"]]
    assert not any("docker" in p for p in doc["packages"])  # only after the mounts
    main, worker = files_of(OPENSTACK), worker_files()
    for path in ("/etc/ssh/sshd_config.d/10-jupyterhub-cloud.conf",
                 "/etc/security/limits.d/90-jupyterhub-cloud.conf",
                 "/usr/local/sbin/jhc-metadata-block", "/etc/systemd/system/jhc-metadata-block.service",
                 "/etc/systemd/system/jhc-docker-prune.timer",
                 "/etc/systemd/system/jhc-docker-prune.service",
                 "/etc/apt/apt.conf.d/52jupyterhub-cloud-auto-upgrades"):
        assert worker[path]["content"] == main[path]["content"], path
    assert "/usr/local/sbin/jhc-data-volume" not in worker  # no data volume on a worker


def test_worker_docker_keeps_images_on_the_root_disk_trusts_the_managers_registry_no_live_restore() -> None:
    daemon = json.loads(worker_files()["/etc/docker/daemon.json"]["content"])
    assert "data-root" not in daemon  # /var/lib/docker: never on the NFS share
    assert daemon["insecure-registries"] == [f"{MANAGER}:5000"]
    # dockerd refuses to join a swarm with live-restore on (docs.docker.com "Live restore")
    assert daemon["live-restore"] is False
    main = json.loads(files_of(OPENSTACK)["/etc/docker/daemon.json"]["content"])
    assert main["live-restore"] is True
    same = ("data-root", "insecure-registries", "live-restore")
    assert {k: v for k, v in main.items() if k not in same} == {
        k: v for k, v in daemon.items() if k not in same}


def test_docker_requires_the_three_mounts() -> None:
    dropin = worker_files()["/etc/systemd/system/docker.service.d/10-jupyterhub-cloud.conf"]
    lines = dropin["content"].splitlines()
    assert [line for line in lines if line.startswith("RequiresMountsFor=")] == [
        f"RequiresMountsFor=/srv/jupyterhub/{d}" for d in ("homes", "shared", "datasets")]


def test_fstab_mounts_the_managers_directories_at_the_same_paths() -> None:
    lines = render_worker_fstab("/srv/jupyterhub", MANAGER).splitlines()
    fields = [line.split() for line in lines]
    assert [(f[0], f[1], f[2]) for f in fields] == [
        (f"{MANAGER}:/srv/jupyterhub/{d}", f"/srv/jupyterhub/{d}", "nfs4")
        for d in ("homes", "shared", "datasets")]
    modes = {f[1]: f[3].split(",") for f in fields}
    assert "ro" in modes["/srv/jupyterhub/datasets"]
    assert "rw" in modes["/srv/jupyterhub/homes"] and "rw" in modes["/srv/jupyterhub/shared"]
    assert all("nofail" in m and "_netdev" in m and "hard" in m for m in modes.values())
    assert worker_files()["/etc/jupyterhub-cloud/nfs.fstab"]["content"] == "\n".join(lines) + "\n"


def test_exports_only_to_the_workers_with_root_squash_and_read_only_datasets() -> None:
    text = render_exports("/srv/jupyterhub", ["10.0.0.12", "10.0.0.11", "10.0.0.12"])
    entries = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert [e[0] for e in entries] == [f"/srv/jupyterhub/{d}" for d in ("homes", "shared",
                                                                          "datasets")]
    for path, *clients in entries:
        assert [c.split("(")[0] for c in clients] == ["10.0.0.11", "10.0.0.12"]
        for client in clients:
            options = client.split("(")[1].rstrip(")").split(",")
            assert "root_squash" in options and "sec=sys" in options
            # Only while the data volume is mounted, never the root disk's empty directory.
            assert "mountpoint=/srv/jupyterhub" in options
            assert ("ro" if path.endswith("datasets") else "rw") in options
            assert "no_root_squash" not in options and "insecure" not in options


@pytest.mark.parametrize("clients", [[], ["10.0.0.0/24"], ["*"], ["worker.example.org"]])
def test_exports_refuse_anything_but_addresses(clients: list[str]) -> None:
    with pytest.raises(ValueError):
        render_exports("/srv/jupyterhub", clients)


def test_no_secret_and_no_public_manager() -> None:
    text = render_worker_user_data(PARAMS)
    assert "SWMTKN" not in text and "join-token" not in text
    with pytest.raises(ValueError, match="private"):
        render_worker_user_data(WorkerParams(OPENSTACK, "198.51.100.10"))
    assert render_worker_user_data(PARAMS) == render_worker_user_data(PARAMS)
    assert render_user_data(OPENSTACK) != text


def _setup(tmp_path: Path, fstab: Path, manager: str = MANAGER) -> subprocess.CompletedProcess:
    data_dir = tmp_path / "srv"
    params = WorkerParams(OPENSTACK.__class__(**{**OPENSTACK.__dict__, "data_dir": str(data_dir)}),
                          manager)
    files = worker_files(params)
    script = tmp_path / "jhc-worker-setup"
    script.write_text(files["/usr/local/sbin/jhc-worker-setup"]["content"])
    (tmp_path / "worker.env").write_text(files["/etc/jupyterhub-cloud/worker.env"]["content"])
    (tmp_path / "nfs.fstab").write_text(files["/etc/jupyterhub-cloud/nfs.fstab"]["content"])
    env = {**os.environ, "JHC_ENV_FILE": str(tmp_path / "worker.env"), "JHC_FSTAB": str(fstab),
           "JHC_NFS_MOUNTS": str(tmp_path / "nfs.fstab"), "JHC_SKIP_MOUNT": "1",
           "JHC_SKIP_DOCKER": "1"}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                          timeout=60)


def test_worker_setup_writes_fstab_once_and_replaces_an_old_manager(tmp_path: Path) -> None:
    fstab = tmp_path / "fstab"
    root = "UUID=abcd / ext4 defaults 0 1\n"
    stale = f"10.9.9.9:{tmp_path}/srv/homes {tmp_path}/srv/homes nfs4 rw 0 0\n"
    fstab.write_text(root + stale)
    run = _setup(tmp_path, fstab)
    assert run.returncode == 0, run.stderr
    lines = fstab.read_text().splitlines()
    assert lines[0] == root.strip() and stale.strip() not in lines
    assert [line.split()[0] for line in lines[1:]] == [
        f"{MANAGER}:{tmp_path}/srv/{d}" for d in ("homes", "shared", "datasets")]
    assert all((tmp_path / "srv" / d).is_dir() for d in ("homes", "shared", "datasets"))
    before = fstab.read_text()
    assert _setup(tmp_path, fstab).returncode == 0
    assert fstab.read_text() == before  # idempotent
    assert _setup(tmp_path, fstab, "10.0.0.99").returncode == 0
    assert fstab.read_text().count("10.0.0.99:") == 3 and f"{MANAGER}:" not in fstab.read_text()


STEP_SCRIPTS = ["swarm-init.sh", "swarm-join.sh", "swarm-leave.sh", "swarm-dissolve.sh",
                "nfs-export.sh", "nfs-unexport.sh", "wait-host-ready.sh"]


@pytest.mark.needs("shellcheck")
@pytest.mark.parametrize("script", [*(f"scripts/{s}" for s in STEP_SCRIPTS),
                                    "cloud-init/jhc-worker-setup.sh"])
def test_scripts_pass_shellcheck(script: str) -> None:
    run = subprocess.run(["shellcheck", "-x", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout
