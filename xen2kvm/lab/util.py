"""Small helpers shared by the lab modules: running commands, pids, the Debian mirror."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    capture: bool = False,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (a list, never a shell string); raise with its stderr when it fails."""
    proc = subprocess.run(
        list(cmd),
        check=False,
        text=True,
        input=input,
        capture_output=capture,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or "").strip() if capture else ""
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{detail}")
    return proc


def in_netns(netns: str, cmd: Sequence[str]) -> list[str]:
    """``cmd`` wrapped to run inside the network namespace ``netns``."""
    return ["ip", "netns", "exec", netns, *cmd]


def netns_exists(netns: str) -> bool:
    return Path("/run/netns", netns).exists()


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def kill_pid(pidfile: Path, sig: int = signal.SIGKILL, wait: float = 10.0) -> None:
    """Signal the process named in ``pidfile`` and wait for it to go; remove the file."""
    pid = read_pid(pidfile)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            raise RuntimeError(f"pid {pid} from {pidfile} did not stop")
    pidfile.unlink(missing_ok=True)


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (never a host name of ours).

    Reads ``/etc/apt/sources.list`` and ``/etc/apt/sources.list.d/*`` (one-line and
    deb822 forms) and returns the first URI that serves the ``debian`` archive (not
    ``debian-security``).
    """
    candidates: list[str] = []
    files = [Path("/etc/apt/sources.list")]
    files += sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for path in files:
        try:
            text = path.read_text()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            if line.startswith("URIs:"):
                candidates += line.split()[1:]
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
            if match:
                candidates.append(match.group(1))
    for uri in candidates:
        if "security" not in uri:
            return uri.rstrip("/")
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list{,.d}: set one up first")


def replace_known_hosts(path: Path, names: set[str], lines: list[str]) -> None:
    """Put ``lines`` in the known_hosts file at ``path``, instead of the lines of ``names``.

    Under an exclusive flock: the source side and the KVM side of the lab both write it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        kept = [
            line
            for line in fh.read().splitlines()
            if line.strip() and not names & set(line.split()[0].split(","))
        ]
        fh.seek(0)
        fh.truncate()
        fh.write("\n".join([*kept, *lines]) + "\n")
