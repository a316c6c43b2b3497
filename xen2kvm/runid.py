"""The id of this controller's run, which the guest locks on the KVM hosts hold.

``<controller hostname>:<pid>:<process start>`` (the start in clock ticks since boot, from
``/proc/<pid>/stat``): a pid alone may be reused once the run is gone, the pair is not.
Computed once per controller process, so every pass over the deploy sees the same id.
Pure Python: no pyinfra here.
"""

from __future__ import annotations

import functools
import os
import re
import socket
from pathlib import Path

RUN_ID_RE = re.compile(r"^([^:\s]+):(\d+):([^:\s]+)$")


def process_start(pid: int) -> str | None:
    """When process ``pid`` of this machine started (an opaque token), None if none runs.

    Without ``/proc`` (not Linux), a live process gets ``-``.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it exists, owned by another user
        return "-"
    # Field 22 (starttime); the command name (field 2) may hold spaces and parentheses.
    return stat.rsplit(")", 1)[1].split()[19]


@functools.cache
def run_id() -> str:
    """This controller process's run id."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}"


def parse(run: str) -> tuple[str, int, str] | None:
    """(hostname, pid, start) of a run id, None if it is not one."""
    match = RUN_ID_RE.match(run)
    return (match[1], int(match[2]), match[3]) if match else None


def gone(run: str, ours: str) -> bool:
    """Whether ``run`` is a run of the controller that runs ``ours`` (the same hostname)
    whose process no longer runs: a run that crashed or was interrupted."""
    theirs, mine = parse(run), parse(ours)
    if theirs is None or mine is None or theirs[0] != mine[0] or run == ours:
        return False
    return process_start(theirs[1]) != theirs[2]
