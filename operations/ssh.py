"""
Hold an SSH connection open from a destination to a guest's dom0 for the length of the
guest's window, so that its final copies and their integrity checks share it.

Every ``rsync -e ssh`` makes a connection of its own: a key exchange, the host key's
check and the key's signature, about 1.4 s each on the lab's emulated KVM host (OpenSSH
10 against a dom0's 9.2, which settle on sntrup761x25519). A guest's window makes one
copy and one or two checks per filesystem. With a connection master opened before the
source stops, they ride on it (ssh's ``ControlPath``): the window makes no new
connection. Its sessions are the key's like any other, each running the forced command
of the key's authorized_keys line (rsync's read-only daemon). The master's host key check
is the copies' own (``StrictHostKeyChecking=yes``, the dom0's known_hosts).

Nothing depends on the master being there: a copy that finds no master at the socket
connects by itself. A master dies alone after ``PERSIST`` seconds without a session, or
once its connection fails to answer keep-alives.
"""

from __future__ import annotations

import posixpath
import re

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError, QuoteString, StringCommand, operation

from facts.ssh import SshControlMaster
from operations.util.checks import check_bool, check_path
from operations.util.facts import fact

# Seconds a master stays without a session (from its start until the first copy: the
# source's shutdown and the mounts; after the last check, should nothing close it).
PERSIST = 600
# Seconds between keep-alives, and how many may go unanswered before the master gives up
# (its sessions fail; later copies, finding no master, connect by themselves).
ALIVE_INTERVAL, ALIVE_MISSED = 5, 3
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]*")
_USER = re.compile(r"[a-z_][a-z0-9_-]*")


def client_options(path: str) -> list[str]:
    """What an ``ssh`` that may ride on the master at ``path`` adds: never itself a master
    (whatever the host's ssh_config says), the master's socket when there is one."""
    return ["-o", "ControlMaster=no", "-o", f"ControlPath={path}"]


@operation()
def master(
    path: str,
    address: str,
    ssh_key: str,
    known_hosts: str,
    user: str = "root",
    present: bool = True,
):
    """
    Hold (or close) an SSH connection master to ``address`` at the control socket ``path``.

    + path: the control socket (in a directory only root may enter, made if missing)
    + address: where the connection goes (an IP address or a host name)
    + ssh_key: the key it authenticates with
    + known_hosts: the file holding ``address``'s host keys (checked strictly)
    + user: the user it logs in as
    + present: whether the master should run; ``False`` asks it to exit

    A socket left by a master that was killed is removed first: a new master could not
    bind there, and a copy would say it could not connect to it.

    **Example:**

    .. code:: python

        ssh.master(path="/run/xen2kvm/ssh/476e609b77301f99b5dc", address="198.51.100.10",
                   ssh_key="/var/lib/xen2kvm/ssh/id_ed25519",
                   known_hosts="/var/lib/xen2kvm/ssh/known_hosts.xen1")
    """
    check_path("path", path, "file path")
    check_path("ssh_key", ssh_key, "file path")
    check_path("known_hosts", known_hosts, "file path")
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise OperationValueError(f"address must be an IP address or a host name: {address!r}")
    if not isinstance(user, str) or not _USER.fullmatch(user):
        raise OperationValueError(f"user must be a user name: {user!r}")
    check_bool("present", present)
    found = fact(host, SshControlMaster, path=path) or {"state": "none"}
    state = found.get("state")
    if state not in ("none", "stale", "running"):
        raise OperationError(f"unexpected control socket state at {path}: {found!r}")

    if state == "running":
        if present:
            host.noop(f"an SSH connection master already runs at {path} (pid {found['pid']})")
            return
        yield StringCommand(
            "ssh -F /dev/null -o", QuoteString(f"ControlPath={path}"), "-O exit x2k-master"
        )
        return
    if state == "stale":
        yield StringCommand("rm -f", QuoteString(path))
    if not present:
        if state == "none":
            host.noop(f"no SSH connection master runs at {path}")
        return
    yield StringCommand("mkdir -p -m 0700", QuoteString(posixpath.dirname(path)))
    options = [
        ("BatchMode", "yes"),
        ("StrictHostKeyChecking", "yes"),
        ("UserKnownHostsFile", known_hosts),
        ("ControlMaster", "yes"),
        ("ControlPath", path),
        ("ControlPersist", str(PERSIST)),
        ("ServerAliveInterval", str(ALIVE_INTERVAL)),
        ("ServerAliveCountMax", str(ALIVE_MISSED)),
    ]
    yield StringCommand(
        "ssh -i",
        QuoteString(ssh_key),
        *[part for name, value in options for part in ("-o", QuoteString(f"{name}={value}"))],
        "-f -N",
        QuoteString(f"{user}@{address}"),
    )
