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
from operations.plans import guest_plan, live_inputs, plan_inputs
from xen2kvm import rehome
from xen2kvm.errors import Xen2KvmError
from xen2kvm.fstab import FstabEntry, parse_fstab
from xen2kvm.inventory import Fleet, Guest, KvmHost, XenHost
from xen2kvm.planner import GuestPlan, SourceVolume, source_volumes
from xen2kvm.pyinfra_inventory import fleet_for, selected_guests
from xen2kvm.xenconfig import parse_xen_config

CUTOVER_COMPLETE = "cutover-complete"
DOWNTIME_START = "downtime-start"
FINAL_COPY_DONE = "final-copy-done"


@dataclass(frozen=True)
class Work:
    guest: Guest
    xen: XenHost
    kvm: KvmHost
    plan: GuestPlan | None  # None only with need_plan=False, when it cannot be made
    fstab: list[FstabEntry]
    migrated: bool  # cutover-complete is in the journal
    # downtime-start is: an earlier run began the cutover (the Xen guest may be stopped),
    # so this one goes straight on with it, without the warm copy from the running guest
    cutover_started: bool = False
    # final-copy-done is: the new disk is complete and let go; only the KVM start is left
    final_copied: bool = False


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
        if guest.rehome_to or getattr(guest, filter_by) != host.name:
            continue  # (a rehomed guest is a Rehome item: see rehomes())
        kvm = the_fleet.kvm_hosts[guest.kvm_host]
        try:
            inputs = plan_inputs(the_fleet, guest)
            plan, fstab = guest_plan(the_fleet, guest, inputs), parse_fstab(inputs.fstab)
        except OperationError:
            if need_plan:
                raise
            plan, fstab = None, []
        records = journal(kvm, guest)
        items.append(
            Work(
                guest=guest,
                xen=the_fleet.xen_hosts[guest.xen_host],
                kvm=kvm,
                plan=plan,
                fstab=fstab,
                migrated=done(records, CUTOVER_COMPLETE),
                cutover_started=done(records, DOWNTIME_START),
                final_copied=done(records, FINAL_COPY_DONE),
            )
        )
    return items


def kvm_address(kvm: KvmHost) -> str:
    """Where the KVM host's copies come from, as the sources see it."""
    return kvm.migration_address or kvm.address


def parents_first(mountpoint: str) -> tuple[bool, int, str]:
    """Sort key for mount points: ``/`` first, then each parent before its children."""
    return (mountpoint != "/", mountpoint.count("/"), mountpoint)


def filesystems(volumes) -> list:
    """The volumes that are mounted (not swap), parents before children."""
    return sorted((v for v in volumes if v.mountpoint), key=lambda v: parents_first(v.mountpoint))


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
    return sorted(mounts, key=lambda item: parents_first(item[0]))


@dataclass(frozen=True)
class Rehome:
    """A guest that moves to another dom0 and stays on Xen (``rehome_to``)."""

    guest: Guest
    old: XenHost  # the dom0 it leaves (its xen_host)
    new: XenHost  # the dom0 it moves to
    volumes: list[SourceVolume]  # its filesystems and swap, as the old dom0 holds them
    xen_config: str  # its config's text on the old dom0
    rehomed: bool  # rehome-complete is in the journal on the new dom0


_REHOMES: dict[tuple, list[Rehome]] = {}


def rehomes_in_run() -> bool:
    """Whether this run covers any guest that is rehomed (the same answer on every host)."""
    return any(guest.rehome_to for guest in selected_guests(host))


def rehomes(filter_by: str) -> list[Rehome]:
    """The run's rehomed guests that concern this host (``filter_by``: xen_host for the
    old dom0, rehome_to for the new one, name for the guest). Read from live facts: the
    old dom0's config and LV sizes, the guest's fstab."""
    key = (id(host.state), host.name, filter_by)
    if key not in _REHOMES:
        _REHOMES[key] = [
            _rehome(guest)
            for guest in selected_guests(host)
            if guest.rehome_to and getattr(guest, filter_by) == host.name
        ]
    return _REHOMES[key]


def _rehome(guest: Guest) -> Rehome:
    the_fleet = fleet()
    new = the_fleet.xen_hosts[str(guest.rehome_to)]
    records = inventory.get_host(new.name).get_fact(
        MigrationJournal, state_dir=rehome.DOM0_STATE, guest=guest.name
    )
    inputs = live_inputs(guest)
    try:
        domain = parse_xen_config(inputs.xen_config, f"{guest.xen_host}:{guest.xen_config}")
        volumes = source_volumes(guest.name, domain, parse_fstab(inputs.fstab), inputs.sizes)
    except (Xen2KvmError, ValueError) as exc:
        raise OperationError(f"{guest.name}: {exc}") from None
    return Rehome(
        guest=guest,
        old=the_fleet.xen_hosts[guest.xen_host],
        new=new,
        volumes=volumes,
        xen_config=inputs.xen_config,
        rehomed=done(records, rehome.REHOME_COMPLETE),
    )
