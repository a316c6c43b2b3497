"""
Facts about OpenSSH's client on a host: a connection master that several ``ssh`` runs
share through its control socket (``ControlPath``), as ``operations.ssh.master`` holds one.
"""

from __future__ import annotations

import re

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

_RUNNING = re.compile(r"Master running \(pid=(\d+)\)")


class SshControlMaster(FactBase[dict]):
    """
    The connection master listening on the control socket ``path``, as ``ssh -O check``
    sees it: none (no socket), stale (a socket no master answers on, left by one that was
    killed) or running, with its pid. The check's own output, then its exit code::

        Master running (pid=4566)
        rc 0

    Gives ``{"state": "running", "pid": 4566}``, ``{"state": "stale"}`` or
    ``{"state": "none"}``. ``-F /dev/null``: no ssh_config of the host's chooses how the
    check is made.
    """

    default = dict

    @override
    def requires_command(self, path: str) -> str:
        return "ssh"

    @override
    def command(self, path: str) -> StringCommand:
        return StringCommand(
            "if [ -S",
            QuoteString(path),
            "]; then ssh -F /dev/null -o",
            QuoteString(f"ControlPath={path}"),
            '-O check x2k-master 2>&1; echo "rc $?"; elif [ -e',
            QuoteString(path),
            ']; then echo "not a socket"; else echo "no socket"; fi',
        )

    @override
    def process(self, output: list[str]) -> dict:
        lines = [line.strip() for line in output if line.strip()]
        if lines == ["no socket"]:
            return {"state": "none"}
        if lines == ["not a socket"]:
            raise FactProcessError("the control socket's path holds something else")
        if not lines or not lines[-1].startswith("rc "):
            raise FactProcessError(f"the control socket check did not finish: {output!r}")
        if lines[-1] != "rc 0":
            return {"state": "stale"}
        for line in lines[:-1]:
            found = _RUNNING.fullmatch(line)
            if found:
                return {"state": "running", "pid": int(found[1])}
        raise FactProcessError(f"ssh -O check said 0 but no master's pid: {output!r}")
