"""
The moves of this run: one item per guest, whichever its destination (a KVM host, or
another dom0 for a rehome). Every phase's task file asks for the moves that concern the
host it runs on, as their source dom0, their destination or the guest itself.

A move's state comes from its journal on the destination, read once when the run starts:
the journal is written only by xen2kvm, and a guest whose move is complete gets only the
operations that hold its end state, never the copying ones (which would mount its disk
on the destination while it runs there).

Its plan comes from inputs frozen on the destination at the first presync (see
``xen2kvm.planinputs``) or, before that, from live facts: the Xen config, the LV sizes and
the filesystems on them (blkid; the ext ones' features, dumpe2fs) on its dom0, the fstab in
the running guest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyinfra import host, inventory
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import FileContents

from facts.commands import CommandsMissing
from facts.disk import BlkidFilesystems, BlockDeviceSize, Dumpe2fsFeatures
from facts.journal import MigrationJournal, MigrationJournals
from facts.xen import XenConfigFile
from operations.util.facts import fact
from tasks.destinations import Destination, destination
from xen2kvm import guestkinds, journal, paths, windows
from xen2kvm.downtime import NO_PEERS, Peers, project
from xen2kvm.errors import Xen2KvmError
from xen2kvm.filesystems import EXT
from xen2kvm.fstab import FstabEntry, parse_fstab
from xen2kvm.inventory import Guest, KvmHost, XenHost
from xen2kvm.planinputs import PlanInputs, identity
from xen2kvm.planner import GuestPlan, SourceVolume, source_volumes
from xen2kvm.pyinfra_inventory import fleet_for, selected_guests
from xen2kvm.xenconfig import XenDomain, parse_xen_config

Where = Literal["source", "dest", "guest"]


@dataclass(frozen=True)
class Move:
    """One guest's move from its dom0 to its destination."""

    guest: Guest
    source: XenHost  # the dom0 it leaves
    xen_domain: str  # its Xen domain's name, as its config says (what xl lists)
    to: Destination  # what the destination does its own way
    dest: str  # the destination host's inventory name
    dest_spec: KvmHost | XenHost
    state_dir: str  # on the destination: journal, locks, key, plan inputs, tree
    inputs: PlanInputs | None  # None only with need_plan=False, when they cannot be had
    volumes: tuple[SourceVolume, ...]  # its filesystems and swap, as its dom0 holds them
    plan: GuestPlan | None  # the new disk (KVM); None for a rehome, or without inputs
    fstab: tuple[FstabEntry, ...]
    records: tuple[dict, ...]  # its journal as the run found it
    migrated: bool  # the move's last milestone is in the journal
    # downtime-start is: an earlier run began the cutover (the source may be stopped), so
    # this one goes straight on with it, without the warm copy from the running guest
    cutover_started: bool = False
    # final-copy-done is: the new volumes are complete and let go; only the start is left
    final_copied: bool = False
    # what the other guests' cutovers on its destination measured (its projected downtime)
    peers: Peers = NO_PEERS

    @property
    def key(self) -> str:
        return paths.migration_key(self.state_dir)

    @property
    def tree(self) -> str:
        return paths.target_root(self.state_dir, self.guest.name)

    @property
    def guest_dialled(self) -> str:
        """Where the destination reaches the running guest for the warm copies: its
        migration address, if it has one."""
        return self.guest.migration_address or self.guest.address

    @property
    def dom0_dialled(self) -> str:
        """Where the destination reaches the dom0 for the final copy: its migration
        address (the crossover cable), if it has one."""
        return self.source.migration_address or self.source.address

    def coming_from(self, source_migration_address: str | None) -> str:
        """The address the destination's copies come from, as the source sees them: its
        own migration address when it dials the source's (the inventory makes sure both
        ends have one), its address otherwise."""
        if source_migration_address and self.dest_spec.migration_address:
            return self.dest_spec.migration_address
        return self.dest_spec.address

    @property
    def address(self) -> str:
        """Where the destination's warm copies come from, as the guest sees them."""
        return self.coming_from(self.guest.migration_address)

    @property
    def dom0_address(self) -> str:
        """Where the destination's final copy comes from, as the dom0 sees it."""
        return self.coming_from(self.source.migration_address)

    @property
    def xen_config(self) -> str:
        """The text of its Xen config on the source dom0 (as frozen)."""
        if self.inputs is None:
            raise OperationError(f"{self.guest.name}: its plan inputs cannot be read now")
        return self.inputs.xen_config

    @property
    def filesystems(self) -> list[SourceVolume]:
        """Its mounted filesystems (not swap), parents before children."""
        mounted = (v for v in self.volumes if v.mountpoint)
        return sorted(mounted, key=lambda v: parents_first(str(v.mountpoint)))

    @property
    def source_lvs(self) -> list[tuple[str, str]]:
        """(mountpoint, LV on the dom0) of its filesystems, parents first."""
        return [(str(v.mountpoint), v.device) for v in self.filesystems]

    @property
    def source_devices(self) -> list[str]:
        """Every LV of its Xen config on the dom0, swap too."""
        return [v.device for v in self.volumes]

    def known_hosts(self, source: str) -> str:
        return paths.known_hosts(self.state_dir, source)

    def projection(self) -> str:
        """Its projected downtime as the run found its journal (for operation names)."""
        found = project(
            list(self.records), self.guest.boot_time, self.guest.integrity_check, self.peers
        )
        said = found.describe() if found else "no projected downtime yet (no warm copy)"
        budget = self.guest.downtime_budget
        return f"{said}, budget {budget} s" if budget is not None else said

    def need_plan(self) -> GuestPlan:
        if self.plan is None:
            raise OperationError(f"{self.guest.name}: it has no plan for {self.dest}")
        return self.plan


def parents_first(mountpoint: str) -> tuple[bool, int, str]:
    """Sort key for mount points: ``/`` first, then each parent before its children."""
    return (mountpoint != "/", mountpoint.count("/"), mountpoint)


_MOVES: dict[tuple, list[Move]] = {}


def moves(where: Where, need_plan: bool = True) -> list[Move]:
    """The run's moves that concern this host: as their ``source`` dom0, their ``dest``
    (the KVM host or new dom0) or the ``guest`` itself. Computed once per run, host and
    question (the task files ask often).

    With ``need_plan=False`` (rollback), a move whose inputs cannot be read (the guest is
    down and they were never frozen, so nothing was built or mounted for it) has none.
    """
    key = (id(host.state), host.name, where, need_plan)
    if key not in _MOVES:
        _MOVES[key] = [
            _move(guest, need_plan)
            for guest in selected_guests(host)
            if _concerns(guest, where) == host.name
        ]
    return _MOVES[key]


def window_order() -> list[tuple[list[str], list[str], bool]]:
    """The cutover's rounds (``xen2kvm.windows``), each with the round before it (whose
    guests boot meanwhile) and whether it waits for them to answer before its windows
    (one of them boots on a KVM host with ``windows_during_boot: false`` that it uses);
    then the last round's guests on their own. From the inventory: the same on every host
    of the run, each guest with the hosts its window uses (its dom0, its destination)."""
    hosts = {g.name: (g.xen_host, destination(g).host(g)) for g in selected_guests(host)}
    apart = {name for name, kvm in fleet_for(host).kvm_hosts.items() if not kvm.windows_during_boot}
    found = windows.rounds(list(hosts.items()))
    return [
        (now, booted, windows.waits_for_boots(now, booted, hosts, apart))
        for now, booted in zip([*found, []], [[], *found], strict=True)
    ]


def _concerns(guest: Guest, where: Where) -> str:
    if where == "source":
        return guest.xen_host
    if where == "dest":
        return destination(guest).host(guest)
    return guest.name


def _move(guest: Guest, need_plan: bool) -> Move:
    fleet = fleet_for(host)
    to = destination(guest)
    dest, state_dir = to.host(guest), to.state_dir(fleet, guest)
    inputs: PlanInputs | None = None
    volumes: list[SourceVolume] = []
    plan, fstab = None, []
    try:
        inputs = frozen_inputs(dest, state_dir, guest) or live_inputs(guest)
        domain = _parse(guest, inputs.xen_config)
        found = inputs.filesystems or {}  # none in inputs frozen by an older xen2kvm
        guestkinds.check_filesystems(guest.name, guestkinds.partition_disks(domain), found)
        fstab = parse_fstab(inputs.fstab)
        volumes = source_volumes(
            guest.name, domain, fstab, inputs.sizes, inputs.filesystems, inputs.features
        )
        guestkinds.check_fstab_types(
            guest.name, [(v.vdev, v.device, v.fstype, v.mountpoint) for v in volumes], found
        )
        plan = to.plan(fleet, guest, domain, volumes)
    except (Xen2KvmError, ValueError) as exc:
        if need_plan:
            said = str(exc)  # the planner's messages name the guest already
            raise OperationError(
                said if said.startswith(f"{guest.name}:") else f"{guest.name}: {said}"
            ) from None
        inputs, volumes, plan, fstab = None, [], None, []
    except OperationError:
        if need_plan:
            raise
        inputs, volumes, plan, fstab = None, [], None, []
    dest_host = inventory.get_host(dest)
    records = fact(dest_host, MigrationJournal, state_dir=state_dir, guest=guest.name)
    peers = _peers(dest, state_dir)
    return Move(
        guest=guest,
        source=fleet.xen_hosts[guest.xen_host],
        xen_domain=xen_domain(guest, inputs),
        to=to,
        dest=dest,
        dest_spec=to.spec(fleet, guest),
        state_dir=state_dir,
        inputs=inputs,
        volumes=tuple(volumes),
        plan=plan,
        fstab=tuple(fstab),
        records=tuple(records),
        migrated=journal.done(records, to.complete),
        cutover_started=journal.done(records, journal.DOWNTIME_START),
        final_copied=journal.done(records, journal.FINAL_COPY_DONE),
        peers=peers.but(guest.name),
    )


_PEERS: dict[tuple, Peers] = {}


def _peers(dest: str, state_dir: str) -> Peers:
    """What the cutovers on a destination measured: read once per run (every move there
    takes its view, ``Peers.but``)."""
    key = (id(host.state), dest, state_dir)
    if key not in _PEERS:
        journals = fact(inventory.get_host(dest), MigrationJournals, state_dir=state_dir)
        _PEERS[key] = Peers.of(journals)
    return _PEERS[key]


def xen_domain(guest: Guest, inputs: PlanInputs | None) -> str:
    """The guest's Xen domain name, from its config (frozen, or read now on its dom0):
    what ``xl`` calls it, whatever the inventory calls the guest; or the inventory's
    ``xen_domain``, which overrides it (a domain renamed with ``xl rename``). Never
    guessed: every stop, start and split-brain guard looks the guest up by this name."""
    if guest.xen_domain:
        return guest.xen_domain
    text = inputs.xen_config if inputs else None
    if text is None:
        dom0 = inventory.get_host(guest.xen_host)
        text = fact(dom0, XenConfigFile, path=guest.xen_config)
    if text is None:
        raise OperationError(
            f"{guest.name}: its Xen config {guest.xen_config} is not on {guest.xen_host}, so "
            "its Xen domain's name is unknown: restore the config (xen_config in the inventory)"
        )
    name = _parse(guest, text).name
    if not name:
        raise OperationError(
            f"{guest.name}: {guest.xen_host}:{guest.xen_config} sets no name: xl needs one"
        )
    return name


def frozen_inputs(dest: str, state_dir: str, guest: Guest) -> PlanInputs | None:
    """The inputs frozen on the destination at the guest's first presync, if any."""
    path = paths.plan_inputs(state_dir, guest.name)
    lines = fact(inventory.get_host(dest), FileContents, path=path)
    return PlanInputs.from_json("\n".join(lines)) if lines else None


def live_inputs(guest: Guest) -> PlanInputs:
    """The inputs read from the dom0 and the running guest (before the cutover only)."""
    dom0 = inventory.get_host(guest.xen_host)
    text = fact(dom0, XenConfigFile, path=guest.xen_config)
    if text is None:
        raise OperationError(f"{guest.name}: its Xen config {guest.xen_config} is not on {dom0}")
    domain = _parse(guest, text)
    sizes, filesystems = {}, {}
    for found in domain.disks:
        if found.cdrom or not found.target:
            continue
        size = fact(dom0, BlockDeviceSize, device=found.target)
        if not size:
            raise OperationError(f"{guest.name}: {found.target} not found on {dom0}")
        sizes[found.target] = size
        # One device per call: blkid may print another name of the device it was given.
        held = fact(dom0, BlkidFilesystems, devices=found.target)
        filesystems[found.target] = identity(held, found.target)
    # The ext filesystems' features, all in one command: the new ones are made with them.
    ext = [device for device, held in filesystems.items() if held.get("TYPE") in EXT]
    features: dict[str, list[str]] | None = {}
    if ext and fact(dom0, CommandsMissing, names=["dumpe2fs"]):
        # The run's commands check refuses it, one line naming dumpe2fs on this dom0 with
        # its fix beside what else is missing; presync never freezes inputs without them.
        features = None
    elif ext:
        features = fact(dom0, Dumpe2fsFeatures, devices=ext)
        unread = [device for device in ext if device not in features]
        if unread:  # the fact failed (its error is logged): never fall back to mkfs's defaults
            raise OperationError(
                f"{guest.name}: dumpe2fs on {dom0} listed no features for "
                f"{', '.join(unread)}: see its error above, then plan again"
            )
    fstab = fact(inventory.get_host(guest.name), FileContents, path="/etc/fstab")
    if fstab is None:
        raise OperationError(f"{guest.name}: it has no /etc/fstab")
    return PlanInputs(text, "\n".join(fstab) + "\n", sizes, filesystems, features)


def _parse(guest: Guest, text: str) -> XenDomain:
    try:
        return parse_xen_config(text, f"{guest.xen_host}:{guest.xen_config}")
    except Xen2KvmError as exc:
        raise OperationError(f"{guest.name}: {exc}") from None
