"""Tests for the host bootstrap (components/host/bootstrap.py and cloud-init/).

The rendered user_data is checked with the real `cloud-init schema`, parsed and inspected,
and its shell scripts are linted and *run*: the volume script against file-backed disk
images (and a loop device when the machine allows it), the metadata block in a private
network namespace. System tools: cloud-init, shellcheck, e2fsprogs, util-linux, iptables.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from components.host.bootstrap import (
    DATA_FS_LABEL,
    USER_DATA_MAX_BYTES,
    BootstrapParams,
    data_device_candidates_aws,
    data_device_candidates_openstack,
    render_user_data,
)
from harness import load_yaml

ROOT = Path(__file__).resolve().parent.parent

OS_VOLUME = "6f1f3a34-1d4b-4b7e-9a57-0c2d5e8f9a10"
AWS_VOLUME = "vol-0abc1234def567890"


def need_tool(name: str) -> str:
    """Path of a system tool the test declares with `needs` (tests/conftest.py checks it)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert path, f"{name}: declare it with @pytest.mark.needs"
    return path


#: what the data-volume script runs (e2fsprogs, util-linux)
VOLUME_TOOLS = pytest.mark.needs("mkfs.ext4", "blkid", "dumpe2fs", "debugfs", "lsblk")


def make_params(**changes: object) -> BootstrapParams:
    base = BootstrapParams(
        admin_user="ubuntu",
        data_dir="/srv/jupyterhub",
        data_device_candidates=data_device_candidates_openstack(OS_VOLUME),
        bytes_per_inode=4096,
        nofile_limit=1048576,
        nproc_limit=65536,
        docker_log_max_size="50m",
        docker_log_max_files=5,
        prune_schedule="weekly",
        prune_until="168h",
    )
    return dataclasses.replace(base, **changes)


OPENSTACK = make_params()
AWS = make_params(admin_user="debian",
                  data_device_candidates=data_device_candidates_aws(AWS_VOLUME, "/dev/sdf"),
                  bytes_per_inode=8192, nofile_limit=524288, nproc_limit=131072,
                  docker_log_max_size="20m", docker_log_max_files=3,
                  prune_schedule="Sun *-*-* 03:00:00", prune_until="72h")


def parsed(params: BootstrapParams) -> dict:
    return load_yaml(render_user_data(params))


def files_of(params: BootstrapParams) -> dict[str, dict]:
    return {f["path"]: f for f in parsed(params)["write_files"]}


def unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Minimal systemd unit parser: keeps repeated keys (ExecStart) in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        sections[current].append((key, value))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


# ---------------------------------------------------------------- the rendered cloud-config


@pytest.mark.parametrize("params", [OPENSTACK, AWS], ids=["openstack", "aws"])
@pytest.mark.needs("cloud-init")
def test_real_cloud_init_schema_accepts_it(params, tmp_path):
    tool = need_tool("cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(render_user_data(params))
    run = subprocess.run([tool, "schema", "--config-file", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Valid cloud-config" in run.stdout


@pytest.mark.needs("cloud-init")
def test_real_cloud_init_schema_rejects_a_broken_variant(tmp_path):
    """Guards the test above: the validator really looks at our keys."""
    tool = need_tool("cloud-init")
    broken = render_user_data(OPENSTACK).replace("package_update: true", "package_update: 42")
    assert broken != render_user_data(OPENSTACK)
    path = tmp_path / "user-data.yaml"
    path.write_text(broken)
    run = subprocess.run([tool, "schema", "--config-file", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0


@pytest.mark.parametrize("params", [OPENSTACK, AWS], ids=["openstack", "aws"])
def test_shape_of_the_cloud_config(params):
    text = render_user_data(params)
    assert text.startswith("#cloud-config\n")
    assert len(text.encode()) <= USER_DATA_MAX_BYTES
    doc = load_yaml(text)
    assert doc["ssh_pwauth"] is False
    assert doc["disable_root"] is True
    assert "unattended-upgrades" in doc["packages"]
    # Docker must not come from `packages:` (installed before runcmd, i.e. before the mount).
    assert not any("docker" in p for p in doc["packages"])
    # Only keys we mean to have: no users/passwords/chpasswd sneaking in.
    assert set(doc) == {"ssh_pwauth", "disable_root", "package_update", "package_upgrade",
                        "packages", "write_files", "runcmd"}
    # The volume is mounted first, and docker is installed only if that succeeded.
    assert doc["runcmd"] == [["/bin/sh", "-c",
                              "/usr/local/sbin/jhc-data-volume && /usr/local/sbin/jhc-host-setup"]]
    for f in doc["write_files"]:
        assert f["owner"] == "root:root"
        expected = "0755" if f["path"].startswith("/usr/local/sbin/") else "0644"
        assert f["permissions"] == expected, f["path"]


def test_daemon_json():
    for params in (OPENSTACK, AWS):
        daemon = json.loads(files_of(params)["/etc/docker/daemon.json"]["content"])
        assert daemon["data-root"] == "/srv/jupyterhub/docker"
        assert daemon["log-driver"] == "json-file"
        assert daemon["log-opts"] == {"max-size": params.docker_log_max_size,
                                      "max-file": str(params.docker_log_max_files)}
        assert daemon["live-restore"] is True
        assert daemon["features"] == {"containerd-snapshotter": False}
        assert daemon["default-ulimits"]["nofile"] == {
            "Name": "nofile", "Soft": params.nofile_limit, "Hard": params.nofile_limit}
        assert daemon["default-ulimits"]["nproc"]["Hard"] == params.nproc_limit


def test_docker_drop_in_requires_the_volume_and_raises_limits():
    files = files_of(AWS)
    drop_in = unit(files["/etc/systemd/system/docker.service.d/10-jupyterhub-cloud.conf"]
                   ["content"])
    assert values(drop_in["Unit"], "RequiresMountsFor") == ["/srv/jupyterhub"]
    assert values(drop_in["Service"], "LimitNOFILE") == ["524288"]
    assert values(drop_in["Service"], "LimitNPROC") == ["131072"]
    limits = [line.split() for line in
              files["/etc/security/limits.d/90-jupyterhub-cloud.conf"]["content"].splitlines()
              if line and not line.startswith("#")]
    for who in ("*", "root"):
        for kind in ("soft", "hard"):
            assert [who, kind, "nofile", "524288"] in limits
            assert [who, kind, "nproc", "131072"] in limits


def test_ssh_is_key_only_without_root():
    content = files_of(OPENSTACK)["/etc/ssh/sshd_config.d/10-jupyterhub-cloud.conf"]["content"]
    settings = dict(line.split(None, 1) for line in content.splitlines()
                    if line and not line.startswith("#"))
    assert settings == {"PermitRootLogin": "no", "PasswordAuthentication": "no",
                        "KbdInteractiveAuthentication": "no", "PubkeyAuthentication": "yes",
                        # room for parallel Docker sessions (tests/test_lifecycle.py)
                        "MaxStartups": "50:30:200"}


@pytest.mark.needs("sshd", "ssh-keygen")
def test_ssh_drop_in_wins_over_cloud_inits(tmp_path):
    """The real sshd's effective config, with cloud-init's drop-in enabling passwords beside ours.

    sshd keeps the first value it reads and includes sshd_config.d/*.conf in name order,
    as Debian's sshd_config does; cloud-init writes 50-cloud-init.conf when ssh_pwauth is set.
    """
    sshd = need_tool("sshd")
    keygen = need_tool("ssh-keygen")
    drop_ins = tmp_path / "sshd_config.d"
    drop_ins.mkdir()
    path = "/etc/ssh/sshd_config.d/10-jupyterhub-cloud.conf"
    (drop_ins / Path(path).name).write_text(files_of(OPENSTACK)[path]["content"])
    (drop_ins / "50-cloud-init.conf").write_text(
        "PasswordAuthentication yes\nKbdInteractiveAuthentication yes\nPermitRootLogin yes\n")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "key")],
                   check=True)
    (tmp_path / "sshd_config").write_text(f"Include {drop_ins}/*.conf\nHostKey {tmp_path}/key\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd -T checks its privilege separation dir
    result = subprocess.run([sshd, "-T", "-f", str(tmp_path / "sshd_config")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    effective = dict(line.split(None, 1) for line in result.stdout.splitlines() if " " in line)
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"


def test_unattended_upgrades_enabled():
    content = files_of(OPENSTACK)["/etc/apt/apt.conf.d/52jupyterhub-cloud-auto-upgrades"][
        "content"]
    assert 'APT::Periodic::Unattended-Upgrade "1";' in content.splitlines()
    assert 'APT::Periodic::Update-Package-Lists "1";' in content.splitlines()


def test_prune_timer_and_service():
    files = files_of(AWS)
    timer = unit(files["/etc/systemd/system/jhc-docker-prune.timer"]["content"])
    assert values(timer["Timer"], "OnCalendar") == ["Sun *-*-* 03:00:00"]
    assert values(timer["Timer"], "Persistent") == ["true"]
    assert values(timer["Install"], "WantedBy") == ["timers.target"]
    service = unit(files["/etc/systemd/system/jhc-docker-prune.service"]["content"])
    assert values(service["Service"], "Type") == ["oneshot"]
    assert values(service["Service"], "ExecStart") == [
        "/usr/bin/docker container prune --force --filter until=72h",
        "/usr/bin/docker image prune --force --filter until=72h",
        "/usr/bin/docker builder prune --force --filter until=72h",
    ]
    assert "docker.service" in values(service["Unit"], "Requires")


@pytest.mark.needs("systemd-analyze")
def test_prune_schedule_is_a_valid_systemd_calendar():
    tool = need_tool("systemd-analyze")
    for params in (OPENSTACK, AWS):
        run = subprocess.run([tool, "calendar", params.prune_schedule],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr


def test_metadata_block_unit_runs_after_every_docker_start():
    files = files_of(OPENSTACK)
    svc = unit(files["/etc/systemd/system/jhc-metadata-block.service"]["content"])
    assert values(svc["Unit"], "After") == ["docker.service"]
    assert values(svc["Unit"], "PartOf") == ["docker.service"]
    assert values(svc["Install"], "WantedBy") == ["docker.service"]
    assert values(svc["Service"], "ExecStart") == ["/usr/local/sbin/jhc-metadata-block"]
    assert "/usr/local/sbin/jhc-metadata-block" in files
    # ... and the setup script enables it together with docker and the prune timer.
    setup = files["/usr/local/sbin/jhc-host-setup"]["content"]
    assert ("systemctl enable docker.service jhc-metadata-block.service "
            "jhc-docker-prune.timer") in setup


def env_of(params: BootstrapParams, tmp_path: Path) -> dict[str, str]:
    """The rendered env file as bash sees it."""
    env_file = tmp_path / "bootstrap.env"
    env_file.write_text(files_of(params)["/etc/jupyterhub-cloud/bootstrap.env"]["content"])
    out = subprocess.run(
        ["bash", "-c", f"set -a; source {env_file}; env -0"],
        capture_output=True, check=True, env={"PATH": os.environ["PATH"]}).stdout
    pairs = (item.split(b"=", 1) for item in out.split(b"\0") if item.startswith(b"JHC_"))
    return {k.decode(): v.decode() for k, v in pairs}


def test_env_file_carries_the_params(tmp_path):
    env = env_of(AWS, tmp_path)
    assert env == {
        "JHC_ADMIN_USER": "debian",
        "JHC_DATA_DIR": "/srv/jupyterhub",
        "JHC_DEVICE_CANDIDATES": " ".join(data_device_candidates_aws(AWS_VOLUME, "/dev/sdf")),
        "JHC_BYTES_PER_INODE": "8192",
        "JHC_FS_LABEL": DATA_FS_LABEL,
    }


def test_admin_user_joins_the_docker_group():
    setup = files_of(AWS)["/usr/local/sbin/jhc-host-setup"]["content"]
    assert 'usermod -aG docker "$JHC_ADMIN_USER"' in setup.splitlines()
    # docker.io is installed by that script, after it checked the volume is mounted.
    lines = setup.splitlines()
    mount_check = next(i for i, line in enumerate(lines) if line.startswith("mountpoint -q"))
    install = next(i for i, line in enumerate(lines) if line.startswith("apt-get install"))
    assert mount_check < install


def test_static_files_are_embedded_verbatim():
    files = files_of(OPENSTACK)
    for target, source in [
        ("/usr/local/sbin/jhc-data-volume", "jhc-data-volume.sh"),
        ("/usr/local/sbin/jhc-host-setup", "jhc-host-setup.sh"),
        ("/usr/local/sbin/jhc-metadata-block", "jhc-metadata-block.sh"),
        ("/etc/systemd/system/jhc-metadata-block.service", "jhc-metadata-block.service"),
    ]:
        assert files[target]["content"] == (ROOT / "cloud-init" / source).read_text()


def test_no_secret_material():
    text = render_user_data(OPENSTACK).lower()
    for marker in ("-----begin", "chpasswd", "ssh_authorized_keys", "password:", "passwd"):
        assert marker not in text


# ---------------------------------------------------------------- determinism, validation


def test_rendering_is_deterministic():
    assert render_user_data(OPENSTACK) == render_user_data(make_params())
    assert render_user_data(AWS) == render_user_data(dataclasses.replace(AWS))


@pytest.mark.parametrize("field,value", [
    ("admin_user", "debian"),
    ("data_dir", "/srv/other"),
    ("data_device_candidates", ("/dev/vdc",)),
    ("bytes_per_inode", 16384),
    ("nofile_limit", 65536),
    ("nproc_limit", 4096),
    ("docker_log_max_size", "10m"),
    ("docker_log_max_files", 2),
    ("prune_schedule", "daily"),
    ("prune_until", "24h"),
])
def test_every_param_changes_the_output(field, value):
    assert render_user_data(make_params(**{field: value})) != render_user_data(OPENSTACK)


@pytest.mark.parametrize("field,value", [
    ("admin_user", "Ubuntu; rm"),
    ("data_dir", "srv/jupyterhub"),
    ("data_dir", "/srv/jupyter hub"),
    ("data_dir", "/srv/../etc"),
    ("data_device_candidates", ()),
    ("data_device_candidates", ["/dev/vdb"]),
    ("data_device_candidates", ("/dev/vdb /dev/vdc",)),
    ("data_device_candidates", ("/tmp/disk",)),
    ("bytes_per_inode", 512),
    ("bytes_per_inode", True),
    ("nofile_limit", 2 * 1048576),
    ("nproc_limit", "65536"),
    ("docker_log_max_size", "50 MB"),
    ("docker_log_max_files", 0),
    ("prune_schedule", "weekly\nExecStart=/bin/sh"),
    ("prune_until", "a week"),
])
def test_bad_params_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"BootstrapParams.{field}"):
        render_user_data(make_params(**{field: value}))


def test_openstack_candidates():
    assert data_device_candidates_openstack(OS_VOLUME) == (
        "/dev/disk/by-id/virtio-6f1f3a34-1d4b-4b7e-9",
        f"/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_{OS_VOLUME}",
        "/dev/vdb",
    )
    with pytest.raises(ValueError):
        data_device_candidates_openstack("../../etc")


def test_aws_candidates():
    expected = ("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc1234def567890",
                "/dev/xvdf", "/dev/sdf")
    assert data_device_candidates_aws(AWS_VOLUME, "/dev/sdf") == expected
    assert data_device_candidates_aws(AWS_VOLUME, "xvdf") == expected
    with pytest.raises(ValueError):
        data_device_candidates_aws(AWS_VOLUME, "/dev/nvme1n1")


# ---------------------------------------------------------------- the shell scripts


def scripts_of(params: BootstrapParams) -> dict[str, str]:
    return {path: f["content"] for path, f in files_of(params).items()
            if f["content"].startswith("#!/bin/bash")}


def test_every_embedded_script_is_strict_bash():
    scripts = scripts_of(OPENSTACK)
    assert set(scripts) == {"/usr/local/sbin/jhc-data-volume", "/usr/local/sbin/jhc-host-setup",
                            "/usr/local/sbin/jhc-metadata-block"}
    for path, content in scripts.items():
        assert "\nset -euo pipefail\n" in content, path
        run = subprocess.run(["bash", "-n"], input=content, capture_output=True, text=True)
        assert run.returncode == 0, f"{path}: {run.stderr}"


@pytest.mark.needs("shellcheck")
def test_every_embedded_script_passes_shellcheck(tmp_path):
    tool = need_tool("shellcheck")
    for path, content in scripts_of(OPENSTACK).items():
        script = tmp_path / Path(path).name
        script.write_text(content)
        run = subprocess.run([tool, "--shell=bash", str(script)],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, f"{path}:\n{run.stdout}"


class Volume:
    """Runs the shipped jhc-data-volume script with the rendered env file plus overrides."""

    def __init__(self, tmp_path: Path, params: BootstrapParams = OPENSTACK) -> None:
        self.tmp = tmp_path
        self.script = tmp_path / "jhc-data-volume"
        self.script.write_text(files_of(params)["/usr/local/sbin/jhc-data-volume"]["content"])
        self.script.chmod(0o755)
        self.base_env = files_of(params)["/etc/jupyterhub-cloud/bootstrap.env"]["content"]
        self.data_dir = tmp_path / "data"
        self.fstab = tmp_path / "fstab"

    def run(self, candidates: list[Path | str], timeout: int = 5, mount: bool = False,
            **extra: str) -> subprocess.CompletedProcess[str]:
        env_file = self.tmp / "test.env"
        overrides = {
            "JHC_DATA_DIR": str(self.data_dir),
            "JHC_DEVICE_CANDIDATES": "'" + " ".join(map(str, candidates)) + "'",
            "JHC_FSTAB": str(self.fstab),
            "JHC_SKIP_MOUNT": "0" if mount else "1",
            "JHC_DEVICE_TIMEOUT": str(timeout),
            **extra,
        }
        env_file.write_text(self.base_env + "".join(f"{k}={v}\n" for k, v in overrides.items()))
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "JHC_ENV_FILE": str(env_file)}
        return subprocess.run([str(self.script)], env=env, capture_output=True, text=True,
                              timeout=timeout + 60)


def image(path: Path, mib: int = 64) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(mib * 1024 * 1024)
    return path


def superblock(img: Path) -> dict[str, str]:
    out = subprocess.run(["dumpe2fs", "-h", str(img)], capture_output=True, text=True,
                         check=True).stdout
    return {k.strip(): v.strip() for k, _, v in
            (line.partition(":") for line in out.splitlines()) if v}


def debugfs(img: Path, request: str, write: bool = False) -> str:
    cmd = ["debugfs", *(["-w"] if write else []), "-R", request, str(img)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


@VOLUME_TOOLS
def test_volume_is_formatted_once_and_keeps_its_data(tmp_path):
    vol = Volume(tmp_path)
    disk = image(tmp_path / "disk.img")
    first = vol.run([tmp_path / "absent", disk])
    assert first.returncode == 0, first.stderr
    sb = superblock(disk)
    assert sb["Filesystem volume name"] == DATA_FS_LABEL
    size = 64 * 1024 * 1024
    assert int(sb["Inode count"]) == size // OPENSTACK.bytes_per_inode
    uuid = sb["Filesystem UUID"]

    marker = tmp_path / "marker.txt"
    marker.write_text("user data\n")
    debugfs(disk, f"write {marker} marker.txt", write=True)

    second = vol.run([tmp_path / "absent", disk])
    assert second.returncode == 0, second.stderr
    assert "creating ext4" not in second.stderr
    assert superblock(disk)["Filesystem UUID"] == uuid
    assert debugfs(disk, "cat marker.txt") == "user data\n"


@VOLUME_TOOLS
def test_inode_ratio_follows_the_param(tmp_path):
    vol = Volume(tmp_path, AWS)  # bytes_per_inode 8192
    disk = image(tmp_path / "disk.img")
    assert vol.run([disk]).returncode == 0
    assert int(superblock(disk)["Inode count"]) == 64 * 1024 * 1024 // 8192


@VOLUME_TOOLS
def test_fstab_entry_by_uuid_with_nofail_replaces_stale_lines(tmp_path):
    vol = Volume(tmp_path)
    disk = image(tmp_path / "disk.img")
    vol.fstab.write_text(
        "UUID=root-uuid / ext4 defaults 0 1\n"
        f"# old: UUID=gone {vol.data_dir} ext4 defaults 0 2\n"
        f"UUID=gone {vol.data_dir} ext4 defaults,nofail 0 2\n")
    for _ in range(2):
        run = vol.run([disk])
        assert run.returncode == 0, run.stderr
    uuid = superblock(disk)["Filesystem UUID"]
    assert vol.fstab.read_text() == (
        "UUID=root-uuid / ext4 defaults 0 1\n"
        f"# old: UUID=gone {vol.data_dir} ext4 defaults 0 2\n"
        f"UUID={uuid} {vol.data_dir} ext4 defaults,nofail 0 2\n")


@VOLUME_TOOLS
def test_state_layout_is_created(tmp_path):
    vol = Volume(tmp_path)
    assert vol.run([image(tmp_path / "disk.img")]).returncode == 0
    for sub in ("docker", "state/postgres", "state/ldap", "state/hub", "state/caddy",
                "homes", "shared", "datasets"):
        assert (vol.data_dir / sub).is_dir(), sub
    shared = (vol.data_dir / "shared").stat()
    assert shared.st_gid == 100
    assert stat.S_IMODE(shared.st_mode) == 0o2775
    # Existing directories are left alone (services adjust their own modes and owners).
    (vol.data_dir / "homes").chmod(0o711)
    assert vol.run([tmp_path / "disk.img"]).returncode == 0
    assert stat.S_IMODE((vol.data_dir / "homes").stat().st_mode) == 0o711


@VOLUME_TOOLS
def test_waits_for_a_volume_attached_after_boot(tmp_path):
    vol = Volume(tmp_path)
    disk = tmp_path / "late.img"
    timer = threading.Timer(1.5, image, args=(disk,))  # appears after the first look
    timer.start()
    try:
        started = time.monotonic()
        run = vol.run([disk], timeout=30)
    finally:
        timer.join()
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started >= 1.5
    assert superblock(disk)["Filesystem volume name"] == DATA_FS_LABEL


@VOLUME_TOOLS
def test_gives_up_with_a_clear_error(tmp_path):
    vol = Volume(tmp_path)
    started = time.monotonic()
    run = vol.run([tmp_path / "nothing-here"], timeout=1)
    assert run.returncode != 0
    assert time.monotonic() - started < 30
    assert "no data volume appeared within 1s" in run.stderr
    assert str(tmp_path / "nothing-here") in run.stderr
    assert not vol.fstab.exists() or "nofail" not in vol.fstab.read_text()


@VOLUME_TOOLS
def test_generic_name_with_a_foreign_filesystem_is_never_taken(tmp_path):
    """/dev/vdb may be an ephemeral disk or config drive: not ours unless blank or labelled."""
    vol = Volume(tmp_path)
    other = image(tmp_path / "ephemeral.img")
    subprocess.run(["mkfs.ext4", "-q", "-L", "ephemeral0", str(other)], check=True)
    run = vol.run([other], timeout=1)
    assert run.returncode != 0
    assert "skipping" in run.stderr
    assert superblock(other)["Filesystem volume name"] == "ephemeral0"


@VOLUME_TOOLS
def test_by_id_name_is_trusted_and_its_filesystem_kept(tmp_path):
    """A volume re-attached from an older stack, whatever its label, keeps its data."""
    vol = Volume(tmp_path)
    by_id = tmp_path / "disk" / "by-id"
    by_id.mkdir(parents=True)
    old = image(tmp_path / "old.img")
    subprocess.run(["mkfs.ext4", "-q", "-L", "old-stack", str(old)], check=True)
    uuid = superblock(old)["Filesystem UUID"]
    (by_id / "virtio-volume").symlink_to(old)
    run = vol.run([by_id / "virtio-volume"])
    assert run.returncode == 0, run.stderr
    assert superblock(old)["Filesystem volume name"] == "old-stack"
    assert superblock(old)["Filesystem UUID"] == uuid
    assert f"UUID={uuid} " in vol.fstab.read_text()


@VOLUME_TOOLS
def test_a_partitioned_device_is_refused(tmp_path):
    """A signature that is not a filesystem (here a DOS partition table) is left alone."""
    vol = Volume(tmp_path)
    by_id = tmp_path / "disk" / "by-id"
    by_id.mkdir(parents=True)
    disk = image(tmp_path / "parted.img")
    with open(disk, "r+b") as fh:  # an MBR with one Linux partition
        fh.seek(446)
        fh.write(bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little")
                 + (4096).to_bytes(4, "little"))
        fh.seek(510)
        fh.write(b"\x55\xaa")
    (by_id / "virtio-parted").symlink_to(disk)
    run = vol.run([by_id / "virtio-parted"])
    assert run.returncode != 0
    assert "refusing" in run.stderr
    blkid = subprocess.run(["blkid", "-p", "-o", "export", str(disk)],
                           capture_output=True, text=True).stdout
    assert "PTTYPE=dos" in blkid and "TYPE=ext4" not in blkid


def loop_device(img: Path) -> str:
    run = subprocess.run(["losetup", "--find", "--show", str(img)], capture_output=True,
                         text=True)
    assert run.returncode == 0, f"no loop device here: {run.stderr.strip()}"
    return run.stdout.strip()


@pytest.mark.needs(*VOLUME_TOOLS.args, "losetup", "root")
def test_mounts_for_real_and_survives_a_rerun(tmp_path):
    vol = Volume(tmp_path)
    loop = loop_device(image(tmp_path / "disk.img"))
    try:
        first = vol.run([loop], mount=True)
        assert first.returncode == 0, first.stderr
        assert os.path.ismount(vol.data_dir)
        (vol.data_dir / "homes" / "marker").write_text("kept")
        # Re-run while mounted (idempotent), then after an unmount (next boot).
        assert vol.run([loop], mount=True).returncode == 0
        subprocess.run(["umount", str(vol.data_dir)], check=True)
        third = vol.run([loop], mount=True)
        assert third.returncode == 0, third.stderr
        assert "creating ext4" not in third.stderr
        assert (vol.data_dir / "homes" / "marker").read_text() == "kept"
    finally:
        subprocess.run(["umount", str(vol.data_dir)], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


@pytest.mark.needs("iptables", "ip6tables", "unshare", "root")
def test_metadata_block_in_a_private_network_namespace(tmp_path):
    """Runs the shipped script twice in a new netns: exactly one REJECT rule results."""
    need_tool("iptables")
    need_tool("ip6tables")
    unshare = need_tool("unshare")
    script = tmp_path / "jhc-metadata-block"
    script.write_text(files_of(OPENSTACK)["/usr/local/sbin/jhc-metadata-block"]["content"])
    script.chmod(0o755)
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, text=True)
    assert probe.returncode == 0, f"cannot create a network namespace here: {probe.stderr}"
    run = subprocess.run(
        [unshare, "--net", "bash", "-c",
         f"set -e; iptables -w -N DOCKER-USER; ip6tables -w -N DOCKER-USER; {script}; {script};"
         " iptables -w -S DOCKER-USER; echo ---; ip6tables -w -S DOCKER-USER"],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    v4, v6 = run.stdout.split("---\n")
    rules = [r for r in v4.splitlines() if r.startswith("-A DOCKER-USER")]
    assert len(rules) == 1, run.stdout
    assert "-d 169.254.169.254/32" in rules[0] and "-j REJECT" in rules[0]
    # AWS's IPv6 metadata address (Nitro), when Docker manages ip6tables.
    rules6 = [r for r in v6.splitlines() if r.startswith("-A DOCKER-USER")]
    assert len(rules6) == 1, run.stdout
    assert "-d fd00:ec2::254/128" in rules6[0] and "-j REJECT" in rules6[0]


class HostSetup:
    """Runs the shipped jhc-host-setup with stubbed system commands that log their calls.

    Why stubs: apt, systemd and dockerd are not available to a unit test; what matters
    here is the order (mount check before apt, daemon-reload before the install) and
    the refusals.
    """

    STUBS = ("mountpoint", "systemctl", "apt-get", "apt-cache", "usermod", "sshd", "docker")

    def __init__(self, tmp_path: Path, params: BootstrapParams = AWS) -> None:
        self.tmp = tmp_path
        self.log = tmp_path / "calls.log"
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for name in self.STUBS:
            stub = bin_dir / name
            stub.write_text(
                "#!/bin/bash\n"
                f'echo "{name} $*" >> {self.log}\n'
                f'if [[ {name} == mountpoint ]]; then exit "${{STUB_MOUNTPOINT_RC:-0}}"; fi\n'
                f'if [[ {name} == docker ]]; then echo "$STUB_DOCKER_ROOT"; fi\n'
                f'if [[ {name} == apt-cache ]]; then exit "${{STUB_APT_CACHE_RC:-1}}"; fi\n'
                "exit 0\n")
            stub.chmod(0o755)
        self.path = f"{bin_dir}:/usr/bin:/bin"
        self.script = tmp_path / "jhc-host-setup"
        self.script.write_text(files_of(params)["/usr/local/sbin/jhc-host-setup"]["content"])
        self.script.chmod(0o755)
        self.env_file = tmp_path / "bootstrap.env"
        self.env_file.write_text(
            files_of(params)["/etc/jupyterhub-cloud/bootstrap.env"]["content"]
            + f"JHC_STATE_DIR={tmp_path / 'state'}\n")

    def run(self, **stub_env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        env = {"PATH": self.path, "JHC_ENV_FILE": str(self.env_file),
               "STUB_DOCKER_ROOT": "/srv/jupyterhub/docker", **stub_env}
        run = subprocess.run([str(self.script)], env=env, capture_output=True, text=True,
                             timeout=60)
        calls = self.log.read_text().splitlines() if self.log.exists() else []
        return run, calls


def test_host_setup_installs_docker_after_the_mount_check(tmp_path):
    setup = HostSetup(tmp_path)
    run, calls = setup.run()
    assert run.returncode == 0, run.stderr
    assert calls[0] == "mountpoint -q /srv/jupyterhub"
    install = next(i for i, c in enumerate(calls) if c.startswith("apt-get install"))
    assert calls.index("systemctl daemon-reload") < install
    assert calls[install].split()[-1] == "docker.io"  # no buildx where it is not packaged
    assert "usermod -aG docker debian" in calls
    assert ("systemctl enable docker.service jhc-metadata-block.service "
            "jhc-docker-prune.timer") in calls
    assert "systemctl try-reload-or-restart ssh.service" in calls
    assert (tmp_path / "state" / "host-ready").exists()


def test_host_setup_adds_buildx_where_packaged(tmp_path):
    run, calls = HostSetup(tmp_path).run(STUB_APT_CACHE_RC="0")
    assert run.returncode == 0, run.stderr
    install = next(c for c in calls if c.startswith("apt-get install"))
    assert install.split()[-2:] == ["docker.io", "docker-buildx"]


def test_host_setup_refuses_without_the_volume(tmp_path):
    run, calls = HostSetup(tmp_path).run(STUB_MOUNTPOINT_RC="1")
    assert run.returncode != 0
    assert "not mounted" in run.stderr
    assert not any(c.startswith(("apt-get", "systemctl", "usermod")) for c in calls)
    assert not (tmp_path / "state" / "host-ready").exists()


def test_host_setup_fails_if_docker_ignored_the_data_root(tmp_path):
    run, _ = HostSetup(tmp_path).run(STUB_DOCKER_ROOT="/var/lib/docker")
    assert run.returncode != 0
    assert "docker data-root is /var/lib/docker" in run.stderr
    assert not (tmp_path / "state" / "host-ready").exists()
