"""
Order across hosts. pyinfra chains each host's operations in order, but runs the hosts'
chains side by side: without a common point, a dom0 could stop a guest while its KVM host
is still building the disk. ``barrier`` is that common point: called on the same line by
every host of the run, it is one operation that waits for all of them.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationValueError, operation


@operation()
def barrier(label: str):
    """
    Wait until every host of the run has done everything before this line. Changes nothing.

    + label: what is done by then, for the output

    **Example:**

    .. code:: python

        flow.barrier(label="the Xen guests are stopped")
    """
    if not label:
        raise OperationValueError("a barrier needs a label")
    host.noop(f"all hosts reached: {label}")
    yield from ()  # a point in the order: never a command
