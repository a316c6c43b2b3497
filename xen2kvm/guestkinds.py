"""Which guests xen2kvm moves, and the one line that refuses the others (pure: no pyinfra).

A real Debian Xen fleet holds more kinds of guest than the field report's: guests that
boot their own kernel (pygrub, pvgrub), filesystems no ``mkfs`` of ours recreates
(btrfs, LUKS, the guest's own LVM inside a Xen disk), initramfs built by dracut, Ubuntu
and older Debian releases. Each is decided here, once, from what the plan reads: the Xen
config, ``blkid`` on the dom0, the guest's ``/etc/os-release`` and dpkg's status file.
What cannot be moved is refused while planning, naming the guest, what was found and
what the operator can do, before anything changes.

Examples::

    >>> xen_boot(domain).kind            # bootloader = 'pygrub'
    'pygrub'
    >>> userland({"ID": "debian", "VERSION_ID": "12"}, "amd64", installs_kernel=True)
    'Debian 12 (bookworm)'
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import PlanError
from .filesystems import FILESYSTEMS  # what a move recreates; the plan refuses the rest

if TYPE_CHECKING:
    from .xenconfig import XenDomain

# What ``disk.filesystem`` makes (``operations/disk.py``, ``requirements.MKFS``): the only
# filesystems a move recreates on its destination.
SUPPORTED = "xen2kvm makes ext2, ext3, ext4, xfs and swap only"
_FAMILY = {"ext2": "ext", "ext3": "ext", "ext4": "ext", "xfs": "xfs", "swap": "swap"}

# What blkid calls the signatures a move cannot recreate, and why.
_UNMOVABLE = {
    "crypto_LUKS": (
        "a LUKS container (crypto_LUKS): an encrypted volume is not recreated (its key "
        "and crypttab stay in the guest)"
    ),
    "LVM2_member": (
        "an LVM physical volume (LVM2_member): the guest's own volume group inside a "
        "Xen disk is not recreated"
    ),
    "btrfs": "btrfs: its subvolumes and snapshots are not recreated",
    "zfs_member": "a ZFS pool member (zfs_member): the pool is not recreated",
    "linux_raid_member": "an md RAID member (linux_raid_member): the array is not recreated",
}

# Debian releases xen2kvm is made for, by VERSION_ID, with their codenames.
RELEASES = {"11": "bullseye", "12": "bookworm", "13": "trixie"}
# What a release lacks that a move needs, said beside the plan's line: none lacks anything
# now (Debian 11's rsync 3.2.3 serves the migration key's read-only module as later ones do).
RELEASE_NOTES: dict[str, str] = {}


# Boot --------------------------------------------------------------------------------

# Xen's PV grub images, named in ``kernel =``: the grub-legacy pv-grub of the
# xen-utils packages (pv-grub-x86_64.gz) and grub 2's (grub-xen-host's
# grub-x86_64-xen.bin and grub-i386-xen_pvh.bin, grub-xen's pvboot-*.elf in the guest).
_PVGRUB = re.compile(r"(^|[_-])(pv-?grub|pvboot)|grub-[a-z0-9_]+-xen(?![a-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class XenBoot:
    """How a PV guest boots under Xen: the dom0's kernel, or its own through a loader."""

    kind: str  # "kernel" (a kernel of the dom0's), "pygrub", "pvgrub" or "none"
    said: str  # the config's line(s) for it: "bootloader = '/usr/lib/xen-4.1/bin/pygrub'"

    @property
    def own_kernel(self) -> bool:
        """Whether the guest boots a kernel and grub menu of its own."""
        return self.kind in ("pygrub", "pvgrub")


def xen_boot(domain: XenDomain) -> XenBoot:
    """How ``domain`` boots: ``bootloader =`` (pygrub, or any other loader the dom0 runs)
    wins over ``kernel =``, as in xl; a ``kernel`` that is a PV grub image is pvgrub.

    **Example:** ``kernel = '/usr/lib/grub-xen/grub-x86_64-xen.bin'`` -> ``pvgrub``.
    """
    if domain.bootloader:
        return XenBoot("pygrub", f"bootloader = {domain.bootloader!r}")
    if domain.kernel:
        kind = "pvgrub" if _PVGRUB.search(posixpath.basename(domain.kernel)) else "kernel"
        return XenBoot(kind, f"kernel = {domain.kernel!r}")
    return XenBoot("none", "no kernel nor bootloader")


def kvm_boot_note(boot: XenBoot) -> str | None:
    """What a move to KVM makes of a guest that boots itself on Xen (said in the plan):
    it is moved, and boots from the new disk like every other."""
    if not boot.own_kernel:
        return None
    return (
        f"boots its own kernel on Xen ({boot.kind}: {boot.said}); under KVM it boots the "
        "kernel prepare installs through xen2kvm's grub and menu (its own /boot/grub is "
        "never copied)"
    )


def rehome_boot_problem(boot: XenBoot) -> str | None:
    """Why a guest that boots its own kernel is not rehomed (None when it may be): a
    rehomed guest boots the new dom0's kernel, which the move writes into its config."""
    if not boot.own_kernel:
        return None
    return (
        f"boots its own kernel ({boot.kind}: {boot.said}); a rehomed guest boots the new "
        "dom0's kernel instead: move it to KVM (kvm_host: it boots its own kernel there), "
        "or boot it with the dom0's kernel on its old dom0 first (kernel and ramdisk "
        "instead of the bootloader line)"
    )


# Filesystems -------------------------------------------------------------------------


def partition_disks(domain: XenDomain) -> list[tuple[str, str]]:
    """``(vdev, dom0 device)`` of each partition disk of a PV ``domain``: what holds one
    filesystem each (HVM guests, whole disks and cdroms are refused by the planner, each
    with its own message)."""
    if domain.type == "hvm":
        return []
    return [
        (disk.vdev, disk.target)
        for disk in domain.disks
        if not disk.cdrom and disk.target and disk.partition_number is not None
    ]


def filesystem_problem(found: Mapping[str, str]) -> str | None:
    """What is wrong with a Xen disk whose ``blkid`` signature is ``found`` (its keys as
    ``BlkidFilesystems`` gives them), or None when a move can recreate it. A disk blkid
    recognises nothing on is left to the guest's fstab (and then to mkfs).

    **Example:** ``{"TYPE": "crypto_LUKS", "UUID": "..."}`` -> ``"holds a LUKS ..."``.
    """
    kind = found.get("TYPE")
    if kind in FILESYSTEMS:
        return None
    if kind in _UNMOVABLE:
        return f"holds {_UNMOVABLE[kind]}"
    if kind:
        return f"holds {kind}, a filesystem xen2kvm does not make"
    if found.get("PTTYPE"):
        return (
            f"holds a partition table ({found['PTTYPE']}), not a filesystem: a whole disk "
            "behind a partition's name"
        )
    return None


def check_filesystems(
    guest: str, disks: Iterable[tuple[str, str]], found: Mapping[str, Mapping[str, str]]
) -> None:
    """Refuse (``PlanError``) a guest whose Xen disks hold what a move cannot recreate.

    + disks: ``(vdev, dom0 device)`` of each Xen disk (``xvda2``, ``/dev/vg0/www-root``)
    + found: ``blkid`` on the dom0, by device (``BlkidFilesystems``)
    """
    for vdev, device in disks:
        problem = filesystem_problem(found.get(device, {}))
        if problem:
            raise PlanError(
                guest,
                "disk",
                f"{device} ({vdev}) {problem}; {SUPPORTED}: keep the guest on Xen, or move "
                "that data onto one of those first",
            )


def check_fstab_types(
    guest: str,
    volumes: Iterable[tuple[str, str, str, str | None]],
    found: Mapping[str, Mapping[str, str]],
) -> None:
    """Refuse a filesystem whose fstab type no ``mkfs`` of ours makes (``auto``,
    ``reiserfs``), or that ``blkid`` finds to be another kind than fstab says (the new
    filesystem is made of fstab's type: an ext3 said ``ext4`` is fine, xfs said ext4 not).

    + volumes: ``(vdev, dom0 device, fstab type, mount point or None)`` of each
    + found: ``blkid`` on the dom0, by device (empty once the plan's inputs are frozen)
    """
    for vdev, device, fstype, mountpoint in volumes:
        where = f"{mountpoint or 'swap'} ({vdev}, {device})"
        held = found.get(device, {}).get("TYPE")
        if fstype not in FILESYSTEMS:
            fix = f"write {held}, as blkid finds it, in" if held in FILESYSTEMS else "fix"
            raise PlanError(
                guest,
                "fstab",
                f"{where} is of type {fstype!r} in the guest's fstab; the new filesystem is "
                f"made of that type and {SUPPORTED}: {fix} its fstab line",
            )
        if held in FILESYSTEMS and _FAMILY[held] != _FAMILY[fstype]:
            raise PlanError(
                guest,
                "fstab",
                f"{where} is {fstype} in the guest's fstab but blkid finds {held} on the "
                f"dom0: fix the type in its fstab line",
            )


# Initramfs ---------------------------------------------------------------------------

# The packages that build a guest's initramfs with another tool than initramfs-tools, the
# one prepare installs (with its settings in /etc/initramfs-tools/) for the kernel it
# adds: dracut and tiny-initramfs provide linux-initramfs-tool as initramfs-tools does,
# and conflict with it (installing initramfs-tools removes them); dracut-core holds
# dracut itself, and the guest may run it beside initramfs-tools.
INITRAMFS_TOOLS = {"dracut": "dracut", "dracut-core": "dracut", "tiny-initramfs": "tiny-initramfs"}
# dpkg's states in which a package's files are gone (removed; purged or never installed).
DPKG_GONE = ("not-installed", "config-files")


def initramfs_problem(states: Mapping[str, str]) -> str | None:
    """Why a guest's initramfs cannot be left to the initramfs-tools prepare installs
    (None when it can). A guest "uses dracut" when dpkg's status holds ``dracut`` or
    ``dracut-core`` with its files (any state but ``not-installed``, ``config-files``):
    installing initramfs-tools would remove it, or leave two tools writing the same
    ``/boot/initrd.img-*``, and change how the guest boots.

    + states: the dpkg state of each of ``INITRAMFS_TOOLS`` the guest's dpkg knows
      (``DpkgPackageStates``)

    **Example:** ``{"dracut": "installed", "dracut-core": "installed"}`` -> ``"builds its
    initramfs with dracut (dpkg: dracut installed, dracut-core installed); ..."``.
    """
    there = {name: state for name, state in sorted(states.items()) if state not in DPKG_GONE}
    tools = sorted({INITRAMFS_TOOLS[name] for name in there if name in INITRAMFS_TOOLS})
    if not tools:
        return None
    found = ", ".join(f"{name} {state}" for name, state in there.items())
    return (
        f"builds its initramfs with {' and '.join(tools)} (dpkg: {found}); prepare installs "
        "initramfs-tools for its KVM kernel (apt removes the tools it conflicts with) and "
        "writes /etc/initramfs-tools/ settings, which changes how the guest boots: switch "
        "it to initramfs-tools first (apt-get install initramfs-tools, then check that it "
        "still boots), or keep it on Xen"
    )


# Userland ----------------------------------------------------------------------------


def userland(os_release: Mapping[str, str], arch: str, installs_kernel: bool) -> str:
    """The guest's release as the plan says it (``Debian 12 (bookworm)``), from its
    ``/etc/os-release``; ``ValueError`` with the reason and the fix for a distribution or
    release xen2kvm is not made for.

    + os_release: the file's keys (``OsRelease``): ``ID``, ``VERSION_ID``, ...
    + arch: its dpkg architecture (``amd64``, ``i386``)
    + installs_kernel: whether the move installs a Debian kernel in it (to KVM; a rehome
      uses the new dom0's kernel)
    """
    ident = os_release.get("ID", "")
    name = os_release.get("PRETTY_NAME") or os_release.get("NAME") or ident
    if not ident:
        raise ValueError(
            "has no /etc/os-release (or no ID in it): xen2kvm moves Debian 11, 12 and 13 "
            "guests only (install base-files, or upgrade the guest)"
        )
    if ident == "ubuntu":
        raise ValueError(
            f"runs {name} (ID=ubuntu), which xen2kvm does not support yet: Ubuntu names its "
            "kernel and grub packages otherwise (linux-image-generic, linux-virtual; no "
            "linux-image-686-pae) and its moves are untested: keep it on Xen, or move it "
            "by hand"
        )
    if ident != "debian":
        raise ValueError(
            f"runs {name} (ID={ident}): xen2kvm moves Debian guests only (Debian 11, 12, "
            "13: bullseye, bookworm, trixie): keep it on Xen, or move it by hand"
        )
    version = os_release.get("VERSION_ID", "")
    codename = os_release.get("VERSION_CODENAME", "")
    if not version:  # testing has no VERSION_ID until its release
        version = next((v for v, c in RELEASES.items() if c == codename), "")
    if version not in RELEASES:
        said = f"Debian {version or codename or '(no VERSION_ID)'}"
        raise ValueError(
            f"runs {said}: xen2kvm is made for Debian 11, 12 and 13 (bullseye, bookworm, "
            "trixie): upgrade the guest to one of them first"
        )
    if installs_kernel and arch == "i386" and version == "13":
        raise ValueError(
            "runs Debian 13 (trixie) i386, which has no i386 kernel "
            "(linux-image-686-pae) to install for KVM: rehome it onto a 64-bit dom0 "
            "instead (rehome_to), or move it while it runs Debian 12"
        )
    said = f"Debian {version} ({RELEASES[version]})"
    note = RELEASE_NOTES.get(version)
    return f"{said}; {note}" if note else said
