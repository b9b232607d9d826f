"""Host-key pinning with the real OpenSSH client and server on loopback.

A server (sshd) is started with one host key, then "replaced" by one with another key on the same
address and port, as a rolled host keeps its IP. With the stack's ssh options (from a mock run of
the program) the key is accepted only through a new server's known_hosts file, and the wait step
stops at once, loudly, when the same server's key changed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ROOT, run_program

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
#: a test with real sshd servers on loopback, run as root (tests/conftest.py: `needs`)
REAL_SSH = pytest.mark.needs("sshd", "ssh", "ssh-keygen", "root")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, root: Path, port: int, client_pub: str) -> None:
        self.root, self.port, self.proc = root, port, None
        (root / "authorized_keys").write_text(client_pub)

    def start(self, key_name: str) -> None:
        key = self.root / key_name
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True)
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {key}\nUsePAM no\n"
            f"PidFile {self.root}/sshd.pid\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    client_key = tmp_path / "client"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(client_key)],
                   check=True)
    srv = Server(tmp_path, free_port(), (tmp_path / "client.pub").read_text())
    try:
        yield srv, client_key
    finally:
        srv.stop()


def stack_ssh_options(tmp_path: Path, client_key: Path, server_id: str) -> list[str]:
    """The options the program gives ssh for a server with this id (read from a mock run)."""
    run = run_program("dev", overrides={"sshPrivateKeyPath": str(client_key),
                                        "sshKnownHostsFile": str(tmp_path / "kh")})
    opts = run.resources["jhc-ready"].plain["environment"]["JHC_SSH_OPTS"].split()
    (tmp_path / "kh.d").mkdir(exist_ok=True)  # the wait step creates it (mkdir -p) first
    # The mocks name the server "jhc-server-id"; a real replacement has a new id.
    return [o.replace("jhc-server-id", server_id) for o in opts]


def ssh_true(opts: list[str], port: int) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", *opts, "-p", str(port), "root@127.0.0.1", "true"],
                          capture_output=True, text=True, timeout=30)


def without_multiplexing(opts: list[str]) -> list[str]:
    """ControlMaster would reuse the first server's connection after the "roll"."""
    out = []
    for i, o in enumerate(opts):
        if o.startswith("Control") or (o == "-o" and i + 1 < len(opts)
                                       and opts[i + 1].startswith("Control")):
            continue
        out.append(o)
    return out


@REAL_SSH
def test_changed_key_accepted_only_for_a_new_server(server, tmp_path: Path) -> None:
    srv, client_key = server
    first = without_multiplexing(stack_ssh_options(tmp_path, client_key, "server-1"))
    srv.start("hostkey-a")
    assert ssh_true(first, srv.port).returncode == 0  # trust on first use
    assert ssh_true(first, srv.port).returncode == 0  # pinned, same key
    srv.stop()
    srv.start("hostkey-b")  # same address, another key
    same = ssh_true(first, srv.port)
    assert same.returncode == 255 and "Host key verification failed" in same.stderr
    second = without_multiplexing(stack_ssh_options(tmp_path, client_key, "server-2"))
    assert ssh_true(second, srv.port).returncode == 0  # a new server id: a fresh file


@REAL_SSH
def test_wait_step_stops_at_once_on_a_changed_key(server, tmp_path: Path) -> None:
    srv, client_key = server
    opts = without_multiplexing(stack_ssh_options(tmp_path, client_key, "server-1"))
    srv.start("hostkey-a")
    assert ssh_true(opts, srv.port).returncode == 0
    srv.stop()
    srv.start("hostkey-b")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "wait-host-ready.sh")], capture_output=True, text=True,
        timeout=60, env={**os.environ, "JHC_SSH_TARGET": "root@127.0.0.1",
                         "JHC_SSH_OPTS": " ".join([*opts, "-p", str(srv.port)]),
                         "JHC_KNOWN_HOSTS": str(tmp_path / "kh.d" / "server-1"),
                         "JHC_READY_TIMEOUT": "600"})
    assert result.returncode == 1
    assert time.monotonic() - started < 20  # not the 600 s timeout
    assert "different host key" in result.stderr
