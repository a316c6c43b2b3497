"""Container hosts: the lab's stand-ins for machines (Xen guests and the dom0).

A container is ``ip netns exec <prefix>-<host> unshare --mount --pid --fork --uts
--kill-child python -m xen2kvm.lab.containers init SPEC``: its own network, mount, PID
and UTS namespaces. PID 1 (``init_main`` below) mounts the host's filesystems (the guest's
own LV images through loop devices, or an overlay for the dom0), /proc, /sys, a private
/dev (tmpfs with the usual nodes, plus any block nodes the spec asks for), /run, then
starts the daemons with the system's own init scripts from a child shell in a chroot
(exim does not detach when its parent is PID 1), reaps orphans, and on SIGTERM stops the
daemons like a shutdown would. No systemd as PID 1: the machine has none to give. Where a
release ships no init script for a daemon (Debian 13's rsyslog), the lab's stand-in from
``files/initd`` runs instead, copied into the container's /run (``rc``): never on its disk.

Stopping: SIGTERM to the container's PID 1 (a clean shutdown), then SIGKILL to the
``unshare`` process (it ignores SIGTERM; ``--kill-child`` takes the PID namespace down).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import LabConfig
from .util import in_netns, kill_pid, pid_alive, read_pid, run

# The lab's init scripts for daemons whose package has none, in the container's /run.
STANDINS = Path(__file__).parent / "files" / "initd"
STANDINS_AT = "/run/x2k-lab/init.d"
DEV_NODES = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)


@dataclass
class Mount:
    source: str
    target: str  # inside the container's root
    fstype: str
    options: str = "rw"


@dataclass
class DevNode:
    path: str  # e.g. /dev/xenvg/web1-root
    major: int
    minor: int


@dataclass
class Spec:
    name: str
    root: str  # host path where the container's root is mounted (inside its mount ns)
    workdir: str  # host path for the container's run files (ready flag, rsyslog.conf)
    mounts: list[Mount]
    services: list[str]
    binds: list[Mount] = field(default_factory=list)
    devnodes: list[DevNode] = field(default_factory=list)
    linux32: bool = False  # a 32-bit guest: uname -m says i686, as under a 686-pae kernel


def kill_ours(cfg: LabConfig, pidfile: Path) -> None:
    """Kill the process in ``pidfile`` only if it is this lab's (its command line or
    environment names the lab's directory): a stale pidfile never kills a stranger."""
    pid = read_pid(pidfile)
    if pid is not None:
        try:
            proc = Path(f"/proc/{pid}")
            cmdline, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()
        except OSError:
            cmdline = environ = b""
        root = str(cfg.root).encode()
        if root + b"/" not in cmdline and b"XEN2KVM_LAB_DIR=" + root + b"\0" not in environ:
            pidfile.unlink(missing_ok=True)
            return
    kill_pid(pidfile)


def pidfile(cfg: LabConfig, name: str) -> Path:
    return cfg.pids / f"ct-{name}.pid"


def running(cfg: LabConfig, name: str) -> int | None:
    """PID of the container's ``unshare`` process, or None."""
    return read_pid(pidfile(cfg, name))


def start(cfg: LabConfig, spec: Spec, netns: str, timeout: float = 60.0) -> int:
    """Start the container in ``netns`` and wait until its daemons were started."""
    pid = running(cfg, spec.name)
    if pid is not None:
        return pid
    work = Path(spec.workdir)
    work.mkdir(parents=True, exist_ok=True)
    Path(spec.root).mkdir(parents=True, exist_ok=True)
    ready = work / "ready"
    ready.unlink(missing_ok=True)
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(asdict(spec), indent=1))
    cmd = in_netns(
        netns,
        [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--uts",
            "--kill-child",
            "--propagation",
            "private",
            sys.executable,
            "-m",
            "xen2kvm.lab.containers",
            "init",
            str(spec_file),
        ],
    )
    cfg.pids.mkdir(parents=True, exist_ok=True)
    with (work / "console.log").open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    pidfile(cfg, spec.name).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(cfg, spec.name, graceful=False)
            log = (work / "console.log").read_text()[-2000:]
            raise RuntimeError(f"container {spec.name} did not start:\n{log}")
        time.sleep(0.1)
    return proc.pid


def _ns_init(pid: int) -> int | None:
    """The container's PID 1 as seen from outside: the only child of ``unshare``."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return None
    return int(children[0]) if children else None


def seen_inside(cfg: LabConfig, name: str, path: Path) -> Path | None:
    """``path`` as the running container's PID 1 sees it (through its mount namespace:
    its root exists only there), or None when the container does not run."""
    pid = running(cfg, name)
    init = _ns_init(pid) if pid is not None else None
    return Path(f"/proc/{init}/root") / str(path).lstrip("/") if init is not None else None


def stop(cfg: LabConfig, name: str, graceful: bool = True, timeout: float = 30.0) -> None:
    pid = running(cfg, name)
    if pid is not None and graceful:
        init = _ns_init(pid)
        if init is not None:
            os.kill(init, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
    kill_ours(cfg, pidfile(cfg, name))


# ---- inside the container: PID 1 -------------------------------------------------


class _Shutdown(Exception):
    pass


def _mount(source: str, target: Path, fstype: str | None, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-o", options, source, str(target)]
    run(cmd[:1] + (["-t", fstype] if fstype else []) + cmd[1:])


def _setup(spec: Spec) -> Path:
    root = Path(spec.root)
    for m in sorted(spec.mounts, key=lambda m: m.target.count("/") + (m.target != "/")):
        _mount(m.source, root / m.target.lstrip("/"), m.fstype, m.options)
    _mount("proc", root / "proc", "proc", "nosuid,nodev,noexec")
    _mount("sysfs", root / "sys", "sysfs", "ro,nosuid,nodev,noexec")
    dev = root / "dev"
    _mount("dev", dev, "tmpfs", "mode=755,size=16m,nosuid")
    for node, major, minor in DEV_NODES:
        os.mknod(dev / node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(dev / node, 0o666)  # noqa: S103 (/dev/null & co; mknod obeys the umask)
    for node in spec.devnodes:
        path = root / node.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(node.major, node.minor))
    _mount("devpts", dev / "pts", "devpts", "newinstance,ptmxmode=0666,mode=620,gid=5")
    _mount("shm", dev / "shm", "tmpfs", "mode=1777,nosuid,nodev")
    for link, to in (
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        (dev / link).symlink_to(to)
    _mount("run", root / "run", "tmpfs", "mode=755,size=64m,nosuid,nodev")
    (root / "run/lock").mkdir(mode=0o1777)
    (root / "run/sshd").mkdir(mode=0o755)
    standins = root / STANDINS_AT.lstrip("/")
    standins.mkdir(parents=True)
    for script in STANDINS.iterdir():
        shutil.copy(script, standins / script.name)
    for b in spec.binds:
        _mount(b.source, root / b.target.lstrip("/"), None, "bind")
    rsyslog = root / "etc/rsyslog.conf"
    if rsyslog.exists():  # never read the host's kernel log: imklog off (not on the disk)
        patched = Path(spec.workdir) / "rsyslog.conf"
        text = rsyslog.read_text().replace('module(load="imklog"', '#module(load="imklog"')
        patched.write_text(text)
        run(["mount", "--bind", str(patched), str(rsyslog)])
    socket.sethostname(spec.name)
    return root


def rc(services: list[str], action: str) -> str:
    """The shell loop that starts or stops ``services`` in order: each with its own
    /etc/init.d script, or the lab's stand-in where the guest's release has none."""
    return (
        f"for s in {' '.join(services)}; do "
        f"if [ -x /etc/init.d/$s ]; then /etc/init.d/$s {action}; "
        f"else {STANDINS_AT}/$s {action}; fi; done"
    )


def _chroot_sh(root: Path, script: str, linux32: bool = False) -> None:
    """Run ``script`` in the container's root, reaping every child meanwhile (as PID 1
    must: start-stop-daemon waits for stopped daemons to vanish, zombies included)."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }
    setarch = ["setarch", "linux32"] if linux32 else []
    proc = subprocess.Popen([*setarch, "chroot", str(root), "/bin/sh", "-c", script], env=env)
    while True:
        try:
            pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        if pid == proc.pid:
            proc.returncode = 0  # reaped here, not by Popen
            return


def init_main(spec_file: str) -> None:
    raw = json.loads(Path(spec_file).read_text())
    spec = Spec(
        **{
            **raw,
            "mounts": [Mount(**m) for m in raw["mounts"]],
            "binds": [Mount(**m) for m in raw["binds"]],
            "devnodes": [DevNode(**d) for d in raw["devnodes"]],
        }
    )

    def on_term(signum: int, frame: object) -> None:
        raise _Shutdown

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    root = _setup(spec)
    _chroot_sh(root, rc(spec.services, "start"), spec.linux32)
    (Path(spec.workdir) / "ready").write_text("ready\n")
    try:
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(1)
    except _Shutdown:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _chroot_sh(root, rc(list(reversed(spec.services)), "stop"))
        for sig in (signal.SIGTERM, signal.SIGKILL):  # whatever is left in the namespace
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, sig)
            time.sleep(0.3)
        sys.exit(0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "init" and os.getpid() == 1:
        init_main(sys.argv[2])
    else:
        sys.exit("usage: python -m xen2kvm.lab.containers init SPEC (as PID 1 of a container)")
