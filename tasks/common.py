"""What every phase's task file needs: the fleet, the guests of this run, their plans.

The steps of a guest are chosen from its migration journal on the KVM host, read once when
the run starts: the journal is written only by xen2kvm, and a guest whose cutover is
complete gets only the operations that hold its end state (Xen stopped, autostart off, the
libvirt domain as planned), never the copying ones (which would mount its disk on the
host while it runs).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host, inventory
from pyinfra.api.exceptions import OperationError

from facts.journal import MigrationJournal, done
from operations.plans import guest_plan, plan_inputs
from xen2kvm.fstab import FstabEntry, parse_fstab
from xen2kvm.inventory import Fleet, Guest, KvmHost, XenHost
from xen2kvm.planner import GuestPlan
from xen2kvm.pyinfra_inventory import fleet_for, selected_guests

CUTOVER_COMPLETE = "cutover-complete"


@dataclass(frozen=True)
class Work:
    guest: Guest
    xen: XenHost
    kvm: KvmHost
    plan: GuestPlan | None  # None only with need_plan=False, when it cannot be made
    fstab: list[FstabEntry]
    migrated: bool  # cutover-complete is in the journal


def fleet() -> Fleet:
    return fleet_for(host)


def role() -> str:
    return str(host.data.get("x2k_role"))


def journal(kvm: KvmHost, guest: Guest) -> list:
    return inventory.get_host(kvm.name).get_fact(
        MigrationJournal, state_dir=kvm.state_dir, guest=guest.name
    )


_WORK: dict[tuple, list[Work]] = {}


def work(filter_by: str, need_plan: bool = True) -> list[Work]:
    """See ``_work``; computed once per run, host and question (the task files ask often)."""
    key = (id(host.state), host.name, filter_by, need_plan)
    if key not in _WORK:
        _WORK[key] = _work(filter_by, need_plan)
    return _WORK[key]


def _work(filter_by: str, need_plan: bool) -> list[Work]:
    """The run's guests that concern this host (``filter_by``: xen_host, kvm_host or name).

    A guest's plan comes from its frozen inputs or, before presync froze them, from live
    facts; with ``need_plan=False`` (rollback) a guest whose plan cannot be made then (it
    is down and was never frozen, so nothing was built or mounted for it) gets None.
    """
    the_fleet = fleet()
    items = []
    for guest in selected_guests(host):
        if getattr(guest, filter_by) != host.name:
            continue
        kvm = the_fleet.kvm_hosts[guest.kvm_host]
        try:
            inputs = plan_inputs(the_fleet, guest)
            plan, fstab = guest_plan(the_fleet, guest, inputs), parse_fstab(inputs.fstab)
        except OperationError:
            if need_plan:
                raise
            plan, fstab = None, []
        items.append(
            Work(
                guest=guest,
                xen=the_fleet.xen_hosts[guest.xen_host],
                kvm=kvm,
                plan=plan,
                fstab=fstab,
                migrated=done(journal(kvm, guest), CUTOVER_COMPLETE),
            )
        )
    return items


def kvm_address(kvm: KvmHost) -> str:
    """Where the KVM host's copies come from, as the sources see it."""
    return kvm.migration_address or kvm.address


def mount_order(plan: GuestPlan) -> list[tuple[str, str]]:
    """(mount point, device on the KVM host) for the new disk, parents before children."""
    from operations.disk import mapping_path

    mounts = []
    for volume in plan.volumes:
        if volume.mountpoint is None:
            continue
        device = (
            volume.device
            if plan.layout == "matryoshka"
            else mapping_path(plan.disk_path, volume.partition or 0)
        )
        mounts.append((volume.mountpoint, device))
    mounts.append(("/boot", mapping_path(plan.disk_path, 1)))
    return sorted(mounts, key=lambda item: (item[0] != "/", item[0].count("/"), item[0]))
