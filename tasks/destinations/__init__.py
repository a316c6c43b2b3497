"""
Where a move goes: what differs between a guest moving to a KVM host and one rehomed onto
another dom0 (staying on Xen). The flow of each phase (``tasks/<phase>.py``) is the same
for both and calls these steps at the points where they differ; everything else (the
lock, the warm and final copies, the source's stop and mounts, the split-brain order, the
announcement, the journal) is written once, in the flow.

Each step defines operations when called (nothing runs on import) for one move, on the
host the flow runs it on: ``check``, ``build``, ``open``, ``caught_up``, ``fixups``,
``close``, ``start``, ``end_state`` and ``stopped`` on the destination, ``prepare`` in
the guest, ``not_running`` on the source dom0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from xen2kvm.inventory import Fleet, Guest, KvmHost, XenHost
from xen2kvm.planner import GuestPlan, SourceVolume
from xen2kvm.xenconfig import XenDomain

if TYPE_CHECKING:
    from tasks.move import Move


class Destination:
    """The steps a destination kind does its own way (see the module's docstring)."""

    kind: ClassVar[str]  # kvm, dom0
    complete: ClassVar[str]  # the journal's milestone that ends the move
    answering: ClassVar[str]  # the journal's milestone that ends the downtime
    copy_prefix: ClassVar[str]  # before the copy phase in the journal's step names
    own_files: ClassVar[tuple[str, ...]] = ()  # files in "/" the tool writes: never copied
    # files in "/" of the guest's that the tree must not have (the fix-ups take them out of
    # a tree an older copy filled): never copied either, so no copy brings them back
    left_out: ClassVar[tuple[str, ...]] = ()
    connect_timeout: ClassVar[int]  # seconds for the guest to answer SSH once started
    dest_role: ClassVar[str]  # what the destination needs (xen2kvm.requirements)
    guest_role: ClassVar[str]  # what the guest needs
    installs_kernel: ClassVar[bool] = False  # prepare installs a Debian kernel in the guest

    def host(self, guest: Guest) -> str:
        """The destination host's inventory name."""
        raise NotImplementedError

    def spec(self, fleet: Fleet, guest: Guest) -> KvmHost | XenHost:
        raise NotImplementedError

    def state_dir(self, fleet: Fleet, guest: Guest) -> str:
        raise NotImplementedError

    def plan(
        self, fleet: Fleet, guest: Guest, domain: XenDomain, volumes: list[SourceVolume]
    ) -> GuestPlan | None:
        """The new disk's plan, where there is one to make (a rehome keeps the LVs)."""
        return None

    def under(self, move: Move) -> str:
        """Where the guest runs once moved, for operation names (``under KVM``)."""
        raise NotImplementedError

    def where(self, move: Move) -> str:
        """The same, as the announcement names it (``KVM``, ``Xen on xen2``)."""
        raise NotImplementedError

    def watched(self, move: Move) -> dict[str, str]:
        """What ``journal.answered`` watches besides the port while the guest boots there
        (its libvirt domain, which may stop before it answers); nothing by default."""
        return {}

    def filesystems(self, move: Move) -> list[str]:
        """The filesystem types the destination makes (for their mkfs)."""
        return [volume.fstype for volume in move.volumes]

    def makes_lvs(self, move: Move) -> bool:
        """Whether the destination makes LVs beyond its role's own needs."""
        return False

    def copied(self, move: Move) -> list[str]:
        """The mountpoints the copies fill, parents first."""
        return [volume.mountpoint for volume in move.filesystems]

    # --- the steps ---------------------------------------------------------------

    def check(self, moves: list[Move]) -> None:
        """plan, on the destination: it can take these moves."""

    def prepare(self, move: Move) -> None:
        """prepare, in the running guest: what it needs to boot at the destination."""

    def build(self, move: Move) -> None:
        """presync, on the destination: the new volumes made and mounted as the tree."""
        raise NotImplementedError

    def open(self, move: Move) -> None:
        """cutover, on the destination: the tree mounted again for the final copy."""
        raise NotImplementedError

    # Each fix-up's name and the paths of the guest's tree it depends on.
    fixup_paths: ClassVar[dict[str, tuple[str, ...]]] = {}

    def fixups(self, move: Move, window: bool = False) -> None:
        """presync and cutover, on the destination: the guest's files after each copy; in
        the cutover's window (``window``) only those a copy changed since the last. The
        flow records them done after (``steps.fixups_done``)."""
        raise NotImplementedError

    def caught_up(self, move: Move) -> None:
        """cutover, on the destination, while the guest still runs: what its catch-up
        pass (the last warm copy) leaves nothing more to wait for; nothing by default."""

    def close(self, move: Move) -> None:
        """cutover, on the destination: the tree let go, ready to boot."""
        raise NotImplementedError

    def start(self, move: Move) -> None:
        """cutover, in the window, on the destination: running there, the least that
        takes; the rest of its end state (``end_state``) follows once it boots. By
        default, the whole end state (the flow checks first that the source shows it
        stopped: the split-brain guard)."""
        self.end_state(move)

    def end_state(self, move: Move) -> None:
        """cutover, on the destination: defined, autostarted and running there."""
        raise NotImplementedError

    def stopped(self, move: Move) -> None:
        """rollback, on the destination: stopped there, and not started at boot."""
        raise NotImplementedError

    def not_running(self, move: Move) -> None:
        """rollback, on the source dom0: refuse to go on while it runs at the destination."""
        raise NotImplementedError


def destination(guest: Guest) -> Destination:
    """Where ``guest`` goes: its ``kvm_host``, or the dom0 of its ``rehome_to``."""
    from tasks.destinations.dom0 import Dom0
    from tasks.destinations.kvm import Kvm

    return Dom0() if guest.rehome_to else Kvm()
