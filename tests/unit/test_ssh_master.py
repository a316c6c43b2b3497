"""ssh.master for real: a local sshd (on 127.0.0.1, a port of its own) that lets a key run
only rsync's read-only daemon, as sync.access lets the migration key in on a dom0; the
master opened and closed by the operation's own commands, decided from the fact's own
command run here; copies made with the transport the window's copies use. sshd's log
counts the connections that authenticated."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from facts.ssh import SshControlMaster
from operations.sync import _transport
from tests.harness import run_operation

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path(SSHD).exists() or not shutil.which("rsync"),
    reason="needs root, sshd and rsync",
)


@dataclass
class Server:
    port: int
    key: Path
    known_hosts: Path
    log: Path
    source: Path
    work: Path

    def accepted(self) -> int:
        """How many connections have authenticated with the key so far."""
        return self.log.read_text().count("Accepted publickey for root")


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    source = tmp_path / "source"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "hostname").write_text("web1\n")
    (source / "var").mkdir()
    (source / "var" / "log").write_text("a line\n")
    keygen(tmp_path / "host")
    keygen(tmp_path / "id")
    conf = tmp_path / "rsyncd.conf"
    conf.write_text(f"[x2k]\npath = {source}\nread only = yes\nuse chroot = no\nuid = root\n")
    forced = f'command="rsync --server --daemon --config={conf} .",no-pty,no-port-forwarding'
    (tmp_path / "authorized_keys").write_text(f"{forced} {(tmp_path / 'id.pub').read_text()}")
    port = free_port()
    (tmp_path / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nStrictModes no\n"
        f"PidFile {tmp_path / 'sshd.pid'}\nLogLevel VERBOSE\nPasswordAuthentication no\n"
    )
    host_key = (tmp_path / "host.pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
    log = tmp_path / "sshd.log"
    daemon = subprocess.Popen(
        [SSHD, "-D", "-f", str(tmp_path / "sshd_config"), "-E", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield Server(port, tmp_path / "id", tmp_path / "known_hosts", log, source, tmp_path)
    finally:
        daemon.terminate()
        daemon.wait(10)


def fact(path: Path) -> dict:
    """SshControlMaster read here, as pyinfra would run it (sh -c)."""
    master = SshControlMaster()
    command = master.command(path=str(path)).get_raw_value()
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return master.process(output.stdout.splitlines())


def master(server: Server, path: Path, present: bool = True) -> list[str]:
    """ssh.master's commands from the fact read here, run here; returned."""
    case = {
        "kwargs": {
            "path": str(path),
            "address": "127.0.0.1",
            "ssh_key": str(server.key),
            "known_hosts": str(server.known_hosts),
            "present": present,
        },
        "facts": {"ssh.SshControlMaster": {f"path={path}": fact(path)}},
    }
    commands, _ = run_operation("ssh.master", case)
    for command in commands:
        # The port is the test's own (ssh_config would give it on a real host: -p here).
        command = command.replace("ssh -i ", f"ssh -p {server.port} -i ", 1)
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    return commands


def copy(server: Server, path: Path, what: str) -> subprocess.CompletedProcess[str]:
    """One filesystem's copy as the window makes it: the transport with the connection."""
    ends = _transport(str(server.key), str(server.known_hosts), [], str(path))
    ends = ends.replace("'ssh -i ", f"'ssh -p {server.port} -i ", 1)
    into = server.work / "copy" / what
    into.mkdir(parents=True, exist_ok=True)
    command = f"rsync -aHAXx --numeric-ids --delete {ends} root@127.0.0.1::x2k/{what}/ {into}/"
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)


def test_copies_ride_on_the_master_and_connect_alone_without_it(server: Server):
    path = server.work / "mux" / "web1"
    assert fact(path) == {"state": "none"}
    master(server, path)
    held = fact(path)
    assert held["state"] == "running"
    assert server.accepted() == 1, "the master authenticated once"

    for what in ("etc", "var"):
        done = copy(server, path, what)
        assert done.returncode == 0, done.stderr
    assert (server.work / "copy" / "etc" / "hostname").read_text() == "web1\n"
    assert (server.work / "copy" / "var" / "log").read_text() == "a line\n"
    assert server.accepted() == 1, "both copies rode on the master: no connection of their own"

    closed = master(server, path, present=False)
    assert closed == [f"ssh -F /dev/null -o ControlPath={path} -O exit x2k-master"]
    assert fact(path) == {"state": "none"}, "the master exited and took its socket"
    done = copy(server, path, "etc")
    assert done.returncode == 0, done.stderr
    assert server.accepted() == 2, "without a master the copy made its own connection"


def test_a_killed_master_s_socket_is_replaced(server: Server):
    path = server.work / "mux" / "web1"
    master(server, path)
    os.kill(fact(path)["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while fact(path)["state"] != "stale" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fact(path) == {"state": "stale"}, "its socket stays behind"

    done = copy(server, path, "etc")
    assert done.returncode == 0, "a copy still connects alone"
    assert server.accepted() == 2

    commands = master(server, path)
    assert commands[0] == f"rm -f {path}"
    assert fact(path)["state"] == "running"
    assert server.accepted() == 3
    done = copy(server, path, "var")
    assert done.returncode == 0, done.stderr
    assert server.accepted() == 3, "the new master carries the copy"
    master(server, path, present=False)


def test_the_master_checks_the_host_key(server: Server):
    path = server.work / "mux" / "web1"
    other = server.work / "other"
    keygen(other)
    key = (other.with_suffix(".pub")).read_text().split()[:2]
    server.known_hosts.write_text(f"[127.0.0.1]:{server.port} {' '.join(key)}\n")
    with pytest.raises(AssertionError, match="Host key verification failed"):
        master(server, path)
    assert fact(path) == {"state": "none"}
    assert server.accepted() == 0
