"""Plan one guest's move: from its Xen config, its volumes and the inventory to a KVM layout.

Pure Python, no pyinfra. The plan is deterministic (same inputs, same plan: UUIDs and
generated MACs are derived from the guest's name), so re-rendering it on a rerun gives
byte-identical templates and the operations see nothing to change.

The default layout is the field report's "Matryoshka": one host LV per guest, holding
an MBR partition table with ``/boot`` on partition 1 (outside LVM, so grub reads it
plainly) and an LVM PV on partition 2 carrying the guest's own VG with one LV per Xen
partition. The ``plain`` layout puts each filesystem on its own partition instead.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import PlanError, XenConfigError
from .filesystems import (
    BOOT_FEATURES,
    EXT,
    FILESYSTEM_TAGS,
    PARTITION_TAGS,
    fstab_tag,
    label_problem,
    mkfs_features,
)
from .fstab import FstabEntry, mountpoint_problem
from .journal import COPY_PHASES, JournalError, copy_step
from .units import MAX_MEMORY_MIB, MAX_VCPUS, MIB, MIN_MEMORY_MIB, human, round_up

if TYPE_CHECKING:
    from .inventory import Guest, KvmHost
    from .xenconfig import XenDisk, XenDomain

SECTOR = 512
ALIGN = MIB  # partitions start on MiB boundaries
PV_METADATA = MIB  # LVM2's default pe_start: data starts 1 MiB into the PV
DEFAULT_EXTENT = 4 * MIB
UUID_NAMESPACE = uuid.UUID("6f1c3d4e-2b7a-5c89-9e10-7a2b3c4d5e6f")

# Xen's lifecycle actions and what libvirt calls them (libvirt has no soft-reset).
LIFECYCLE = {
    "destroy": "destroy",
    "restart": "restart",
    "preserve": "preserve",
    "rename-restart": "rename-restart",
    "coredump-destroy": "coredump-destroy",
    "coredump-restart": "coredump-restart",
    "soft-reset": "restart",
}
LIFECYCLE_DEFAULTS = {"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "restart"}
CRASH_ONLY = ("coredump-destroy", "coredump-restart")
# Whose features a new ext filesystem has, as the plan says it (``features_said``).
SOURCE_S = "the source's"
ROOT_S = "the root filesystem's"  # /boot's, when the root is ext
BOOT_S = "Debian 11's and 12's"  # /boot's otherwise (``filesystems.BOOT_FEATURES``)


@dataclass(frozen=True)
class SourceVolume:
    """One Xen partition disk as found on the dom0 and in the guest's fstab."""

    vdev: str  # xvda2
    device: str  # the dom0's block device, e.g. /dev/vg0/www-disk
    size: int  # bytes, from blockdev --getsize64 on the dom0
    fstype: str  # ext4, ext3, xfs, swap
    mountpoint: str | None  # "/", "/var"; None for swap
    options: str = "defaults"
    dump: int = 0
    passno: int = 0
    # Its filesystem's UUID and label on the dom0 (blkid): the new filesystem keeps them,
    # so the guest's UUID= and LABEL= fstab entries still name it. None: it has none, or
    # the plan inputs were frozen by a xen2kvm that did not read them.
    uuid: str | None = None
    label: str | None = None
    # The features dumpe2fs lists for its ext filesystem on the dom0, states too
    # (needs_recovery). None: it is not ext, or the plan inputs were frozen by a xen2kvm
    # that did not read them (the new filesystem then gets mkfs's defaults).
    features: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TargetVolume:
    source: SourceVolume
    name: str  # LV name in the guest VG (matryoshka) or a label (plain)
    size: int  # bytes
    device: str  # the device path inside the migrated guest
    partition: int | None = None  # plain layout: its partition number
    # What mkfs makes it with, exactly (the source's, ``mkfs_features``); None: its defaults
    features: tuple[str, ...] | None = None

    @property
    def features_said(self) -> str:
        """``with the source's features`` (or ``with mkfs's defaults``), for an ext one."""
        return features_said(self.features, SOURCE_S)

    @property
    def made_as(self) -> str:
        """How its new filesystem is made, in words: ``ext4 with the source's features``,
        ``xfs``."""
        return f"{self.fstype} {self.features_said}" if self.fstype in EXT else self.fstype

    @property
    def mountpoint(self) -> str | None:
        return self.source.mountpoint

    @property
    def fstype(self) -> str:
        return self.source.fstype


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # sectors
    size: int  # sectors
    type: str  # MBR type: 83 Linux, 8e LVM, 82 swap, 5 extended
    bootable: bool = False


@dataclass(frozen=True)
class Nic:
    mac: str
    bridge: str
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class DomainPlan:
    """The libvirt domain of one guest: what ``templates/domain.xml.j2`` renders."""

    guest: str
    name: str
    uuid: str
    disk_path: str  # the host LV the domain boots from, on the KVM host
    layout: str
    memory_mib: int
    current_memory_mib: int
    vcpus: int
    nics: tuple[Nic, ...]
    virt_type: str
    machine: str
    serial_console: bool
    lifecycle: dict[str, str]
    notes: tuple[str, ...] = ()

    @property
    def kernel_console(self) -> str:
        return "console=tty0 console=ttyS0,115200n8" if self.serial_console else ""


@dataclass(frozen=True)
class GuestPlan:
    guest: str
    layout: str
    arch: str
    host_vg: str
    host_lv: str
    host_lv_size: int  # bytes, a multiple of the host's extent size
    extent_size: int
    partitions: tuple[Partition, ...]
    guest_vg: str | None
    boot_size: int
    boot_uuid: str
    volumes: tuple[TargetVolume, ...]
    renames: dict[str, str]  # Xen device name -> new device name (fstab, grub)
    kernel_package: str
    domain: DomainPlan
    # /boot's ext4 features (``boot_features``), and whose they are, for the plan's words
    boot_features: tuple[str, ...] = BOOT_FEATURES
    boot_features_from: str = BOOT_S

    @property
    def disk_path(self) -> str:
        return self.domain.disk_path

    @property
    def boot_made_as(self) -> str:
        """How the new /boot is made, as the plan and the operations say it."""
        return f"ext4 {features_said(self.boot_features, self.boot_features_from)}"

    def summary(self) -> str:
        dom = self.domain
        lines = [
            f"{self.guest}: {self.layout} layout in {self.disk_path} "
            f"({human(self.host_lv_size)}), {dom.memory_mib} MiB, {dom.vcpus} vCPU",
            f"  p1 /boot {human(self.boot_size)}, {self.boot_made_as}",
        ]
        for volume in self.volumes:
            where = volume.mountpoint or "swap"
            lines.append(
                f"  {volume.device} {where} {human(volume.size)} "
                f"(from {volume.source.vdev} {human(volume.source.size)}), {volume.made_as}"
            )
        lines += [f"  note: {note}" for note in dom.notes]
        return "\n".join(lines)


def features_said(features: Sequence[str] | None, whose: str) -> str:
    """How an ext filesystem is made, in words: ``with the source's features`` (``whose``),
    or ``with mkfs's defaults`` without them."""
    return f"with {whose} features" if features is not None else "with mkfs's defaults"


def made_with(fstype: str, features: Sequence[str] | None) -> str:
    """`` (with the source's features)``, as an operation's name says how a new ext
    filesystem is made; nothing for xfs and swap."""
    return f" ({features_said(features, SOURCE_S)})" if fstype in EXT else ""


def new_features(source: SourceVolume, size: int) -> tuple[str, ...] | None:
    """The features a new filesystem of ``size`` bytes for ``source`` is made with: its
    source's (``mkfs_features``, ValueError when that size cannot have them); None when
    it is not ext or they were not read (mkfs's defaults then)."""
    if source.features is None or source.fstype not in EXT:
        return None
    return mkfs_features(source.features, size)


def boot_features(root: TargetVolume | None, size: int) -> tuple[tuple[str, ...], str]:
    """The features of the new ``/boot`` (ext4, made by xen2kvm: it has no source), and
    whose they are: the root filesystem's source's when it is ext and they were read, for
    the guest's grub reads that one already (update-grub probes ``/`` too) and its e2fsck
    checks it; else ``BOOT_FEATURES``, which every release xen2kvm moves reads. Never the
    KVM host's mke2fs defaults: Debian 13's add features that Debian 11's e2fsck and the
    grub of Debian 11 and 12 cannot read (``xen2kvm.filesystems``)."""
    if root is None or root.fstype not in EXT or root.source.features is None:
        return BOOT_FEATURES, BOOT_S
    return mkfs_features(root.source.features, size), ROOT_S


def lv_name_for(mountpoint: str | None, taken: set[str]) -> str:
    """``/`` -> root, ``/var/lib/mysql`` -> var_lib_mysql, swap -> swap, swap2, ..."""
    if mountpoint is None:
        base = "swap"
    elif mountpoint == "/":
        base = "root"
    else:
        base = "_".join(part for part in mountpoint.strip("/").split("/") if part)
        base = "".join(c if c.isalnum() or c in "_.+" else "_" for c in base) or "vol"
    name, index = base, 2
    while name in taken:
        name, index = f"{base}{index}", index + 1
    taken.add(name)
    return name


def deterministic_uuid(*parts: str) -> str:
    return str(uuid.uuid5(UUID_NAMESPACE, "\0".join(parts)))


def generated_mac(guest: str, index: int) -> str:
    """A stable locally administered MAC in libvirt's 52:54:00 range."""
    digest = hashlib.sha256(f"{guest}\0{index}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def kernel_package(arch: str, chosen: str | None = None) -> str:
    """The kernel package prepare installs: the inventory's ``kernel``, or Debian's
    generic one for the arch."""
    return chosen or {"amd64": "linux-image-amd64", "i386": "linux-image-686-pae"}[arch]


def plan_guest(
    guest: Guest,
    kvm: KvmHost,
    domain: XenDomain,
    volumes: list[SourceVolume],
    extent_size: int = DEFAULT_EXTENT,
) -> GuestPlan:
    """Plan the KVM side of ``guest``. Raises ``PlanError`` naming the guest and field."""
    _check_volumes(guest.name, domain, volumes)

    taken: set[str] = set()
    sized: list[tuple[SourceVolume, str, int]] = []
    for source in sorted(volumes, key=_volume_order):
        name = lv_name_for(source.mountpoint, taken)
        extra = guest.grow.get(source.mountpoint or "", 0)
        size = round_up(source.size + extra, extent_size)
        sized.append((source, name, size))
    for mount in guest.grow:
        if mount not in {v.mountpoint for v in volumes}:
            raise PlanError(guest.name, f"grow.{mount}", "no such mount point among its disks")

    boot_size = round_up(guest.boot_size, ALIGN)
    boot = Partition(1, ALIGN // SECTOR, boot_size // SECTOR, "83", bootable=True)
    start = ALIGN + boot_size
    partitions = [boot]
    targets: list[TargetVolume] = []
    if guest.layout == "matryoshka":
        # The guest PV: metadata area, the LVs, one spare extent for LVM's own rounding.
        pv_size = PV_METADATA + sum(size for _, _, size in sized) + extent_size
        pv_size = round_up(pv_size, ALIGN)
        partitions.append(Partition(2, start // SECTOR, pv_size // SECTOR, "8e"))
        end = start + pv_size
        for source, name, size in sized:
            device = f"/dev/mapper/{_dm_escape(guest.guest_vg)}-{_dm_escape(name)}"
            targets.append(TargetVolume(source, name, size, device))
    else:
        partitions, targets, end = _plain_partitions(partitions, sized, start)
    targets = [replace(target, features=_new_features(guest, target)) for target in targets]
    root = next((target for target in targets if target.mountpoint == "/"), None)
    features, whose = boot_features(root, boot_size)

    host_lv_size = round_up(end + ALIGN, extent_size)  # room for the MBR's alignment tail
    renames = {}
    for target in targets:
        for alias in _xen_names(target.source.vdev):
            renames[alias] = target.device

    return GuestPlan(
        guest=guest.name,
        layout=guest.layout,
        arch=guest.arch,
        host_vg=kvm.vg,
        host_lv=guest.target_lv,
        host_lv_size=host_lv_size,
        extent_size=extent_size,
        partitions=tuple(partitions),
        guest_vg=guest.guest_vg if guest.layout == "matryoshka" else None,
        boot_size=boot_size,
        boot_uuid=deterministic_uuid(guest.name, "boot"),
        volumes=tuple(targets),
        renames=renames,
        kernel_package=kernel_package(guest.arch, guest.kernel),
        domain=plan_domain(guest, kvm, domain),
        boot_features=features,
        boot_features_from=whose,
    )


def _new_features(guest: Guest, target: TargetVolume) -> tuple[str, ...] | None:
    """The features its new filesystem is made with, at its new size (``new_features``);
    a size that cannot have them is a plan error on the field that set it."""
    source = target.source
    try:
        return new_features(source, target.size)
    except ValueError as exc:
        mountpoint = source.mountpoint or ""
        field = f"grow.{mountpoint}" if mountpoint in guest.grow else "size"
        raise PlanError(
            guest.name, field, f"{source.vdev} ({source.device}), {human(target.size)}: {exc}"
        ) from None


def plan_domain(guest: Guest, kvm: KvmHost, domain: XenDomain) -> DomainPlan:
    """The libvirt side of ``guest``: memory, vCPUs, NICs, lifecycle, its disk."""
    notes: list[str] = []
    macs = _macs(guest, domain, notes)
    bridges = nic_bridges(guest.name, kvm, domain, len(macs))
    nics = tuple(
        Nic(mac=mac, bridge=bridge, ips=guest.ips if index == 0 else ())
        for index, (mac, bridge) in enumerate(zip(macs, bridges, strict=True))
    )
    memory, current = _memory(guest, domain)
    _check_resources(guest, domain, current, guest.vcpus or domain.vcpus or 1)
    lifecycle = _lifecycle(domain, notes)
    return DomainPlan(
        guest=guest.name,
        name=guest.domain_name,
        uuid=_domain_uuid(guest, domain),
        disk_path=f"/dev/{kvm.vg}/{guest.target_lv}",
        layout=guest.layout,
        memory_mib=memory,
        current_memory_mib=current,
        vcpus=guest.vcpus or domain.vcpus or 1,
        nics=nics,
        virt_type=guest.virt_type,
        machine=guest.machine,
        serial_console=guest.serial_console,
        lifecycle=lifecycle,
        notes=tuple(notes),
    )


def source_volumes(
    guest: str,
    domain: XenDomain,
    fstab: list[FstabEntry],
    sizes: Mapping[str, int],
    filesystems: Mapping[str, Mapping[str, str]] | None = None,
    features: Mapping[str, Sequence[str]] | None = None,
) -> list[SourceVolume]:
    """Match the Xen config's partition disks with the guest's fstab and the dom0's sizes.

    ``sizes`` maps each disk's dom0 device (the Xen config's target) to its size in bytes;
    ``filesystems`` maps it to what blkid reads there (``TYPE``, ``UUID``, ``LABEL``), or
    is None when it was not read (plan inputs frozen by an older xen2kvm); ``features``
    maps an ext filesystem's device to the features dumpe2fs lists there, or is None
    likewise (each volume's ``features`` is then None). An fstab entry names a disk by its
    Xen device (``/dev/xvda2``, or an ``sda``/``hda`` alias), or by the ``UUID=`` or
    ``LABEL=`` of the filesystem on it; such an entry that names no disk, or more than
    one, is refused, and so is a ``PARTUUID=`` or ``PARTLABEL=`` (a Xen partition disk
    has no partition table).

    A disk the guest's fstab does not mention is refused: data on it would be left behind.
    So is a filesystem whose mountpoint is not a plain, normalised absolute path (the
    host mounts it there below the new tree), or that the journal cannot name, or whose
    label its new filesystem cannot keep.
    """
    if domain.type == "hvm":
        raise PlanError(
            guest,
            "type",
            "an HVM guest (type 'hvm'): its disks are whole disks with their own partition "
            "tables and boot loader; xen2kvm moves PV guests, one LV per partition",
        )
    disks = [disk for disk in domain.disks if not disk.cdrom]
    for disk in disks:
        _check_disk(guest, disk)
    # whole disks are refused with the volumes (_check_volumes), by their own message
    parts = [disk for disk in disks if disk.partition_number is not None]
    named = [_named_disk(guest, entry, parts, filesystems) for entry in fstab]
    volumes = []
    for disk in parts:
        entry = next((e for e, vdev in zip(fstab, named, strict=True) if vdev == disk.vdev), None)
        if entry is None:
            raise PlanError(
                guest,
                "fstab",
                f"{disk.vdev} ({disk.target}) is in the Xen config but not in the guest's "
                "/etc/fstab: mount it there or leave it out of the Xen config",
            )
        if not entry.is_swap:
            _check_mountpoint(guest, entry)
        size = sizes.get(disk.target or "")
        if not size:
            raise PlanError(guest, "size", f"no size known for {disk.target} on the dom0")
        held = (filesystems or {}).get(disk.target or "", {})
        label = held.get("LABEL") or None
        problem = label and label_problem(entry.fstype, label)
        if problem:
            raise PlanError(
                guest,
                "label",
                f"{disk.vdev} ({disk.target}): its label {label!r} is {problem} (the new "
                f"{entry.fstype} keeps the source's label): shorten it on Xen first",
            )
        volumes.append(
            SourceVolume(
                vdev=disk.vdev,
                device=disk.target or "",
                size=size,
                fstype=entry.fstype,
                mountpoint=None if entry.is_swap else entry.mountpoint,
                options=entry.options,
                dump=entry.dump,
                passno=entry.passno,
                uuid=held.get("UUID") or None,
                label=label,
                features=_listed(features, disk.target or ""),
            )
        )
    return volumes


def _listed(features: Mapping[str, Sequence[str]] | None, device: str) -> tuple[str, ...] | None:
    """The features dumpe2fs listed for ``device``; None when it was not read there."""
    found = None if features is None else features.get(device)
    return None if found is None else tuple(found)


def _named_disk(
    guest: str,
    entry: FstabEntry,
    disks: list[XenDisk],
    filesystems: Mapping[str, Mapping[str, str]] | None,
) -> str | None:
    """The vdev of the disk an fstab entry names, None when it names none of them (proc,
    tmpfs, NFS, a device outside the Xen config). Refuses a tag that cannot be matched:
    the guest mounts that filesystem, and nothing would move it."""
    tag = fstab_tag(entry.device)
    if tag is None:
        return next((d.vdev for d in disks if entry.device in _xen_names(d.vdev)), None)
    key, value = tag
    where = _where(entry)
    if key in PARTITION_TAGS:
        raise PlanError(
            guest,
            "fstab",
            f"{where}: {key}= names a partition, and a Xen partition disk (one LV per "
            "filesystem) has no partition table: name it by UUID=, LABEL= or its Xen device",
        )
    assert key in FILESYSTEM_TAGS
    if filesystems is None:
        raise PlanError(
            guest,
            "fstab",
            f"{where}: its plan inputs were frozen by an older xen2kvm, without the UUIDs "
            "and labels of its filesystems: name it by its Xen device, or plan it anew",
        )

    def holds(disk: XenDisk) -> bool:
        found = filesystems.get(disk.target or "", {}).get(key)
        if found is None:
            return False
        return found.lower() == value.lower() if key == "UUID" else found == value

    matches = [disk for disk in disks if holds(disk)]
    if not matches:
        raise PlanError(
            guest,
            "fstab",
            f"{where}: no disk of its Xen config holds a filesystem with {key} {value!r} "
            "(as blkid reads them on the dom0): add its disk to the Xen config, or fix the line",
        )
    if len(matches) > 1:
        found = ", ".join(f"{d.vdev} ({d.target})" for d in matches)
        raise PlanError(
            guest,
            "fstab",
            f"{where}: {key} {value!r} is on {found}, so the guest mounts either of them: "
            f"give each filesystem its own {key.lower()} on Xen first",
        )
    return matches[0].vdev


def _check_disk(guest: str, disk: XenDisk) -> None:
    """A disk xen2kvm can move is on a block device of the dom0 (a whole disk is refused
    with the volumes, ``_check_volumes``)."""
    where = f"{disk.vdev} ({disk.spec or disk.target})"
    if disk.backend in ("file", "tap") or disk.format != "raw":
        raise PlanError(
            guest,
            "disk",
            f"{where} is an image file ({disk.backend or 'file'}:, {disk.format}): xen2kvm "
            "reads the dom0's block devices (phy:); copy the image to an LV first",
        )


def _where(entry: FstabEntry) -> str:
    """An fstab entry as messages name it: its line number and text (quoted as Python
    does, so no control character reaches the operator's terminal)."""
    return f"line {entry.line} ({entry.text.strip()!r})" if entry.line else repr(entry.device)


def _check_mountpoint(guest: str, entry: FstabEntry) -> None:
    where = f"line {entry.line} ({entry.text.strip()!r})" if entry.line else repr(entry.mountpoint)
    problem = mountpoint_problem(entry.mountpoint)
    if problem:
        raise PlanError(
            guest,
            "fstab",
            f"{where}: {problem}: the KVM host would mount and fill that path. Fix the "
            "guest's /etc/fstab",
        )
    try:
        copy_step(COPY_PHASES[0], entry.mountpoint)
    except JournalError:
        raise PlanError(
            guest,
            "fstab",
            f"{where}: xen2kvm cannot move a filesystem mounted at {entry.mountpoint!r} yet "
            "(its journal names each copy by the mountpoint, of letters, digits and "
            "/ _ . @ + - only): mount it at such a path in the guest first",
        ) from None


def _volume_order(volume: SourceVolume) -> tuple[int, str]:
    # Mount points in mount order (/ before /var before /var/lib), swap last.
    if volume.mountpoint is None:
        return (1_000, volume.vdev)
    depth = 0 if volume.mountpoint == "/" else volume.mountpoint.rstrip("/").count("/")
    return (depth, volume.mountpoint)


def _check_volumes(name: str, domain: XenDomain, volumes: list[SourceVolume]) -> None:
    disks = [disk for disk in domain.disks if not disk.cdrom]
    if not disks:
        raise PlanError(name, "disk", f"{domain.filename} lists no disks")
    whole = [disk.vdev for disk in disks if disk.partition_number is None]
    if whole:
        raise PlanError(
            name,
            "disk",
            f"{', '.join(whole)} in {domain.filename} is a whole disk (with its own partition "
            "table): xen2kvm migrates per-partition Xen disks (one LV per filesystem)",
        )
    by_vdev = {volume.vdev: volume for volume in volumes}
    for disk in disks:
        if disk.vdev not in by_vdev:
            raise PlanError(name, "disk", f"no volume information for {disk.vdev} ({disk.target})")
    mounts = [v.mountpoint for v in volumes if v.mountpoint is not None]
    if "/" not in mounts:
        raise PlanError(name, "fstab", "no disk of the Xen config is mounted at / in its fstab")
    duplicates = {m for m in mounts if mounts.count(m) > 1}
    if duplicates:
        raise PlanError(name, "fstab", f"mounted twice: {', '.join(sorted(duplicates))}")
    for volume in volumes:
        if volume.size <= 0:
            raise PlanError(name, "size", f"{volume.vdev} ({volume.device}) has no size")
        if volume.mountpoint is None and volume.fstype != "swap":
            raise PlanError(name, "fstab", f"{volume.vdev} is neither mounted nor swap")
        if volume.mountpoint == "/boot":
            raise PlanError(
                name, "fstab", f"{volume.vdev} is /boot already: the layout makes its own /boot"
            )


def _plain_partitions(
    partitions: list[Partition], sized: list[tuple[SourceVolume, str, int]], start: int
) -> tuple[list[Partition], list[TargetVolume], int]:
    targets: list[TargetVolume] = []
    # MBR: 4 primaries. With more than 3 volumes, p2 is an extended partition and the
    # volumes become logical partitions p5, p6, ... (each with a 1 MiB EBR gap).
    logical = len(sized) > 3
    if logical:
        extended_start = start
        start += ALIGN
        number = 5
    else:
        number = 2
    for source, name, size in sized:
        kind = "82" if source.fstype == "swap" else "83"
        partitions.append(Partition(number, start // SECTOR, size // SECTOR, kind))
        targets.append(TargetVolume(source, name, size, f"/dev/vda{number}", partition=number))
        start += size + (ALIGN if logical else 0)
        number += 1
    if logical:
        size = start - extended_start
        partitions.insert(1, Partition(2, extended_start // SECTOR, size // SECTOR, "5"))
    return partitions, targets, start


def _dm_escape(name: str) -> str:
    # device-mapper doubles hyphens inside VG and LV names in /dev/mapper names
    return name.replace("-", "--")


def _xen_names(vdev: str) -> list[str]:
    """The names a guest may use for a Xen disk: /dev/xvda2, and the sda/hda aliases."""
    names = [f"/dev/{vdev}"]
    for old, new in (("xvd", "sd"), ("sd", "xvd"), ("hd", "xvd")):
        if vdev.startswith(old):
            names.append(f"/dev/{new}{vdev[len(old) :]}")
    return names


def _macs(guest: Guest, domain: XenDomain, notes: list[str]) -> list[str]:
    count = max(len(domain.vifs), len(guest.macs), 1)
    macs: list[str] = []
    for index in range(count):
        if index < len(guest.macs):
            macs.append(guest.macs[index])
            continue
        xen_mac = domain.vifs[index].mac if index < len(domain.vifs) else None
        if guest.keep_macs and xen_mac:
            macs.append(xen_mac.lower())
        else:
            if guest.keep_macs:
                notes.append(f"vif {index} has no MAC in the Xen config: a new one is assigned")
            macs.append(generated_mac(guest.name, index))
    return macs


def nic_bridges(guest: str, kvm: KvmHost, domain: XenDomain, count: int) -> list[str]:
    """The KVM bridge of each of ``count`` NICs: the one ``kvm.bridges`` maps its vif's Xen
    bridge to, else ``kvm.bridge`` (a vif without ``bridge=``, a NIC beyond the vifs).

    A guest whose vifs are on several Xen bridges (a vif without ``bridge=`` counts as on
    Xen's default one) is refused when one of them is not in the map: its NICs would join
    one KVM bridge, quietly joining networks that Xen keeps apart.
    """
    on_xen = [vif.bridge for vif in domain.vifs]
    several = len(set(on_xen)) > 1
    for index, xen in enumerate(on_xen):
        if several and xen is not None and xen not in kvm.bridges:
            others = ", ".join(sorted({b or "Xen's default" for b in on_xen} - {xen}))
            raise PlanError(
                guest,
                "vif",
                f"vif {index} is on the Xen bridge {xen!r}, which {kvm.name}'s bridges does "
                f"not map, and its other vifs are on {others}: on KVM they would all join "
                f"{kvm.bridge}. Add the KVM bridge of that network to {kvm.name}'s bridges "
                f"in the inventory (bridges: {{{xen}: <KVM bridge>}})",
            )
    return [
        kvm.bridges.get(on_xen[index] or "", kvm.bridge) if index < len(on_xen) else kvm.bridge
        for index in range(count)
    ]


def _memory(guest: Guest, domain: XenDomain) -> tuple[int, int]:
    if guest.memory_mib:
        return guest.memory_mib, guest.memory_mib
    current = domain.memory_mib or 512
    maximum = max(domain.maxmem_mib or current, current)
    return maximum, current


def _check_resources(guest: Guest, domain: XenDomain, memory_mib: int, vcpus: int) -> None:
    """Bound what the KVM domain gets: the Xen parser bounds only what no Xen runs."""
    if not MIN_MEMORY_MIB <= memory_mib <= MAX_MEMORY_MIB:
        what = f"{memory_mib} MiB is outside {MIN_MEMORY_MIB} MiB to {MAX_MEMORY_MIB} MiB"
        if guest.memory_mib:
            raise PlanError(guest.name, "memory", f"{what} (give memory in that range)")
        raise XenConfigError(
            domain.filename,
            domain.lines.get("memory"),
            "memory",
            f"{what}: a KVM guest needs at least {MIN_MEMORY_MIB} MiB (set memory in the"
            " inventory or raise it in the config)",
        )
    if not 1 <= vcpus <= MAX_VCPUS:
        raise PlanError(guest.name, "vcpus", f"{vcpus} is outside 1 to {MAX_VCPUS}")


def _lifecycle(domain: XenDomain, notes: list[str]) -> dict[str, str]:
    actions = {}
    for key, default in LIFECYCLE_DEFAULTS.items():
        value = getattr(domain, key) or default
        mapped = LIFECYCLE.get(value)
        if mapped is None or (mapped in CRASH_ONLY and key != "on_crash"):
            notes.append(f"{key}={value} has no libvirt equivalent: using {default}")
            mapped = default
        elif mapped != value:
            notes.append(f"{key}={value} becomes {mapped} under libvirt")
        actions[key] = mapped
    return actions


def _domain_uuid(guest: Guest, domain: XenDomain) -> str:
    raw = domain.raw.get("uuid") if hasattr(domain, "raw") else None
    if isinstance(raw, str):
        try:
            return str(uuid.UUID(raw))
        except ValueError:
            pass
    return deterministic_uuid(guest.name, "domain")
