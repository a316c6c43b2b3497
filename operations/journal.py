"""
Keep the migration journal on a KVM host: the tool that writes it and its milestones.
"""

from __future__ import annotations

import re
from pathlib import Path

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation
from pyinfra.operations import files

from facts.journal import MigrationJournal, done

TOOL = "/usr/local/sbin/x2k-journal"
TOOL_SOURCE = Path(__file__).resolve().parent.parent / "templates" / "x2k-journal.sh"


@operation()
def tool():
    """
    Install ``x2k-journal``, which runs and records each migration step on this host.

    **Example:**

    .. code:: python

        journal.tool()
    """
    yield from files.put._inner(src=str(TOOL_SOURCE), dest=TOOL, mode="0755")


@operation()
def milestone(guest: str, step: str, state_dir: str = "/var/lib/xen2kvm"):
    """
    Record that a guest reached a milestone (``xen-stopped``, ``cutover-complete``), once
    per migration attempt: a rerun does not record it again.

    + guest: the guest
    + step: the milestone's name
    + state_dir: where the journal lives

    **Example:**

    .. code:: python

        journal.milestone(guest="web1", step="cutover-complete")
    """
    if not re.fullmatch(r"[A-Za-z0-9:/_.@+-]+", step):
        raise OperationValueError(f"not a journal step name: {step!r}")
    if done(host.get_fact(MigrationJournal, state_dir=state_dir, guest=guest), step):
        host.noop(f"{guest}: {step} is already in the journal")
        return
    yield StringCommand(TOOL, QuoteString(state_dir), QuoteString(guest), QuoteString(step), "mark")
