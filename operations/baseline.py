"""
Take a guest's pre-cutover baseline (its sockets, services, mounts, addresses, log tail,
mail queue) and file it with the migration journal, so the verify suite compares "after"
with "before" instead of with guesses.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import File, Sha1File
from pyinfra.operations import files

from operations.util.checks import check_guest, check_path
from operations.util.facts import fact
from operations.util.tree import checked, relative
from xen2kvm.baseline import GUEST_PATH, SCRIPT_NAME

SCRIPT_SOURCE = Path(__file__).resolve().parent.parent / "files" / SCRIPT_NAME
SCRIPT = "/usr/local/sbin/x2k-baseline"


def filed_path(state_dir: str, guest: str) -> str:
    """Where a guest's baseline is kept on the KVM host, beside its journal."""
    return f"{state_dir}/baseline/{guest}"


@operation(is_idempotent=False)
def capture(path: str = GUEST_PATH):
    """
    Record the guest's state now (``x2k-baseline``), after logging one tagged syslog line
    that the verify suite looks for later. Run in the guest right before it stops.

    + path: where the baseline is written in the guest (it travels with the final copy)

    **Example:**

    .. code:: python

        baseline.capture()
    """
    check_path("path", path, "file path")
    yield from files.put._inner(src=str(SCRIPT_SOURCE), dest=SCRIPT, mode="0755")
    partial = f"{path}.partial"
    yield StringCommand(
        "mkdir -p",
        QuoteString(posixpath.dirname(path)),
        "&&",
        SCRIPT,
        ">",
        QuoteString(partial),
        "&& mv",
        QuoteString(partial),
        QuoteString(path),
    )


# A baseline is a few hundred lines; a bigger file in its place is not copied to the host.
FILED_LIMIT = 16 * 1024 * 1024


@operation()
def filed(
    guest: str,
    root: str,
    state_dir: str = "/var/lib/xen2kvm",
    present: bool = True,
    path: str = GUEST_PATH,
):
    """
    Keep a copy of a guest's baseline with its journal on the KVM host (taken from the new
    tree after the final copy); ``present=False`` drops it. The baseline is read only when
    it is a plain file reached without a symbolic link (the guest could point it at the
    host's own files, or at a device), and no bigger than 16 MiB.

    + guest: the guest
    + root: the guest's new tree on this host
    + state_dir: where the journal lives
    + present: whether the copy should be kept
    + path: where the guest wrote its baseline (in its own terms)

    **Example:**

    .. code:: python

        baseline.filed(guest="web1", root="/var/lib/xen2kvm/target/web1")
    """
    check_guest(guest)
    check_path("root", root)
    check_path("state_dir", state_dir)
    name = relative(path)
    dest = filed_path(state_dir, guest)
    kept = fact(host, Sha1File, path=dest)
    if not present:
        if kept is None:
            host.noop(f"{guest}: no baseline kept")
            return
        yield StringCommand("rm -f", QuoteString(dest))
        return

    kinds = checked(root, path, ("file",), "read")
    source = posixpath.join(root, name)
    wanted = None
    if kinds.get(name) == "file":
        size = (fact(host, File, path=source) or {}).get("size") or 0
        if size > FILED_LIMIT:
            raise OperationError(
                f"{guest}: {source} is {size} bytes, more than a baseline's "
                f"{FILED_LIMIT // 2**20} MiB: not copied. Look at what the guest left there"
            )
        wanted = fact(host, Sha1File, path=source)
    if wanted is None and host.state.is_executing:
        raise OperationError(f"{guest}: no baseline at {source} (was it captured?)")
    if wanted is not None and wanted == kept:
        host.noop(f"{guest}: baseline already kept at {dest}")
        return
    yield StringCommand(
        "mkdir -p",
        QuoteString(posixpath.dirname(dest)),
        "&& cp",
        QuoteString(source),
        QuoteString(dest),
    )
