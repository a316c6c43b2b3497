"""
Order across hosts. pyinfra chains each host's operations in order, but runs the hosts'
chains side by side: without a common point, a dom0 could stop a guest while its KVM host
is still building the disk. ``barrier`` is that common point: called on the same line by
every host of the run, it is one operation that waits for all of them.

It is also where a run stops when a host failed before it: a dom0 must not stop a guest
whose KVM host failed, nor a run go on that could not take a guest's lock. A guest that
could not even be reached is the one failure a run goes on with: it is down, as a guest is
between the Xen stop and the KVM start of an interrupted cutover, and the run that
follows finishes that cutover.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError, operation


def halting_failures(failed_hosts: Iterable) -> list[str]:
    """The failed hosts that stop the run: every dom0 and KVM host, and every guest that
    failed after connecting (one of its operations failed)."""
    return sorted(
        failed.name
        for failed in failed_hosts
        if failed.data.get("x2k_role") != "guest" or failed.connected
    )


@operation()
def barrier(label: str):
    """
    Wait until every host of the run has done everything before this line, and stop the
    run there if a dom0, a KVM host or a reachable guest failed before it. Changes nothing.

    + label: what is done by then, for the output

    **Example:**

    .. code:: python

        flow.barrier(label="the Xen guests are stopped")
    """
    if not label:
        raise OperationValueError("a barrier needs a label")
    if host.state.is_executing:
        failed = halting_failures(getattr(host.state, "failed_hosts", ()))
        if failed:
            raise OperationError(
                f"stopped before {label!r}: {', '.join(failed)} failed earlier in this run "
                "(see above); nothing more is done. Fix that and run again: the next run "
                "picks up where this one stopped"
            )
    host.noop(f"all hosts reached: {label}")
    yield from ()  # a point in the order: never a command
