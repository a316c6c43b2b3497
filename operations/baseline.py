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
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files

from operations.util.checks import check_guest, check_path
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


@operation()
def filed(guest: str, source: str, state_dir: str = "/var/lib/xen2kvm", present: bool = True):
    """
    Keep a copy of a guest's baseline with its journal on the KVM host (taken from the new
    tree after the final copy); ``present=False`` drops it.

    + guest: the guest
    + source: the baseline file in the guest's new tree on this host
    + state_dir: where the journal lives
    + present: whether the copy should be kept

    **Example:**

    .. code:: python

        baseline.filed(
            guest="web1",
            source="/var/lib/xen2kvm/target/web1/var/lib/xen2kvm/baseline",
        )
    """
    check_guest(guest)
    check_path("source", source, "file path")
    check_path("state_dir", state_dir)
    dest = filed_path(state_dir, guest)
    kept = host.get_fact(Sha1File, path=dest)
    if not present:
        if kept is None:
            host.noop(f"{guest}: no baseline kept")
            return
        yield StringCommand("rm -f", QuoteString(dest))
        return

    wanted = host.get_fact(Sha1File, path=source)
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
