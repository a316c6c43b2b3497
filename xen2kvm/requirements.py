"""
What each host of a run must have installed before a wave changes anything: the commands
(and, for grub's i386-pc modules, the directory) that the operations, facts and scripts
run there, by role, with the Debian package that provides each. The plan checks them on
every host of the run (``preflight.commands``), so that a missing ``kpartx`` is refused
up front instead of reading as "no partitions" halfway through a presync.

Derived from what the code runs: ``operations/``, ``facts/``, ``files/*.sh`` and the task
files. The README's table is written from this one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The roles a host plays in a run (a dom0 may be the source of some guests and the
# destination of others: it then needs the union).
KVM_HOST = "kvm_host"
SOURCE = "source"  # a source dom0
REHOME = "rehome"  # a rehome's destination dom0
GUEST = "guest"  # a guest moving to KVM
REHOME_GUEST = "rehome_guest"  # a guest rehomed to another dom0


@dataclass(frozen=True)
class Need:
    """One command (or absolute path) a role needs, and how to get it on Debian."""

    name: str  # a command looked up in PATH, or an absolute path that must be executable
    package: str  # the Debian package that provides it
    why: str  # what runs it

    @property
    def remedy(self) -> str:
        return f"apt-get install {self.package}"


# mkfs of each filesystem the planner may choose (``operations/disk.py: _mkfs``).
MKFS: dict[str, Need] = {
    "ext2": Need("mkfs.ext2", "e2fsprogs", "disk.filesystem makes ext2 filesystems"),
    "ext3": Need("mkfs.ext3", "e2fsprogs", "disk.filesystem makes ext3 filesystems"),
    "ext4": Need("mkfs.ext4", "e2fsprogs", "disk.filesystem makes ext4 filesystems"),
    "xfs": Need("mkfs.xfs", "xfsprogs", "disk.filesystem makes xfs filesystems"),
    "swap": Need("mkswap", "util-linux", "disk.filesystem makes swap areas"),
}

_LVM_CREATE = (
    Need("lvcreate", "lvm2", "lvm.logical_volume creates the new LVs"),
    Need("lvs", "lvm2", "the LvmLogicalVolumes fact"),
    Need("vgs", "lvm2", "the LvmVolumeGroups fact"),
)
_MOUNTS = (
    Need("mount", "mount", "disk.mount mounts the trees"),
    Need("umount", "mount", "disk.mount and disk.unmounted unmount them"),
    Need("findmnt", "util-linux", "the FindmntMounts fact"),
    Need("blkid", "util-linux", "the BlkidFilesystems fact"),
)
_PULLS = (
    Need("rsync", "rsync", "sync.tree pulls the guest's files"),
    Need("ssh", "openssh-client", "rsync's transport to the sources"),
    Need("ssh-keygen", "openssh-client", "sync.key makes the migration key"),
    Need("setsid", "util-linux", "x2k-journal runs each copy in its own session"),
    Need("bash", "bash", "x2k-journal's boot watcher probes the guest's SSH port"),
    Need("timeout", "coreutils", "x2k-journal's boot watcher bounds each probe"),
    Need("awk", "mawk", "x2k-journal and the MigrationChanges fact read what a copy changed"),
)
# rsync alone, of any release from Debian 11's 3.2.3 on: the migration key may only run
# its daemon over SSH, serving one read-only module (``sync.access``).
_SERVED = (
    Need(
        "rsync",
        "rsync",
        "the destination's rsync talks to this one; the migration key may only run its "
        "daemon, serving one read-only module",
    ),
)

NEEDS: dict[str, tuple[Need, ...]] = {
    KVM_HOST: (
        *_LVM_CREATE,
        Need("vgcreate", "lvm2", "lvm.volume_group makes a matryoshka guest's VG"),
        Need("vgchange", "lvm2", "lvm.volume_group_active (de)activates the guest VG"),
        Need("pvs", "lvm2", "the LvmPhysicalVolumes fact"),
        Need("kpartx", "kpartx", "disk.partition_mappings maps the new disk's partitions"),
        Need("dmsetup", "dmsetup", "the KpartxMappings fact"),
        Need("udevadm", "udev", "disk.partition_mappings waits for udev's LVM autoactivation"),
        Need("sfdisk", "fdisk", "disk.partition_table and the SfdiskPartitionTable fact"),
        Need("blockdev", "util-linux", "the BlockDeviceSize fact"),
        *_MOUNTS,
        *_PULLS,
        Need("virsh", "libvirt-clients", "libvirt.domain and the LibvirtDomains fact"),
        Need("grub-install", "grub2-common", "guestfix.bootloader installs grub on the disk"),
        Need("/usr/lib/grub/i386-pc", "grub-pc-bin", "grub-install --target=i386-pc's modules"),
    ),
    SOURCE: (
        Need("xl", "xen-utils-common", "xen.domain and the XenDomains fact"),
        Need("blockdev", "util-linux", "the BlockDeviceSize fact sizes the guest's LVs"),
        Need("stat", "coreutils", "the BlockDeviceIds fact finds who uses the guest's LVs"),
        Need("dumpe2fs", "e2fsprogs", "the Dumpe2fsFeatures fact reads the ext features kept"),
        *_MOUNTS,
        *_SERVED,
    ),
    REHOME: (
        Need("xl", "xen-utils-common", "xen.domain starts the guest, XenInfo for its kernel"),
        *_MOUNTS,
        *_PULLS,
    ),
    GUEST: (
        *_SERVED,
        Need("apt-get", "apt", "prepare installs the kernel, grub-pc, lvm2, arping"),
        Need("awk", "mawk", "the DpkgPackageStates fact reads dpkg's status (dracut check)"),
    ),
    # A rehomed guest's prepare installs nothing: net.arp_announce needs these already.
    REHOME_GUEST: (
        *_SERVED,
        Need("arping", "arping", "net.arp_announce (Habets' arping: -U -i)"),
        Need("ip", "iproute2", "net.arp_announce finds the interface that holds each address"),
    ),
}


def needs(
    roles: Iterable[str], filesystems: Iterable[str] = (), lvm: bool = False
) -> dict[str, str]:
    """What a host with these roles needs, ``{name: remedy}`` in the table's order: each
    role's row, the mkfs of each planned filesystem and, with ``lvm``, the LVM commands
    that make new LVs (a rehome's dom0 with a ``vg``)."""
    found: dict[str, str] = {}
    wanted = [need for role in roles for need in NEEDS[role]]
    # A filesystem no mkfs here makes is disk.filesystem's to refuse, with its own reason.
    wanted += [MKFS[fstype] for fstype in filesystems if fstype in MKFS]
    if lvm:
        wanted += _LVM_CREATE
    for need in wanted:
        found.setdefault(need.name, need.remedy)
    return found


BY_FILESYSTEM = "kvm_host, rehome (by filesystem)"  # table rows only: mkfs per planned type
REHOME_WITH_VG = "rehome (with vg)"  # table rows only: a rehome dom0 that makes the new LVs


def table() -> list[tuple[str, str, str, str]]:
    """(role, name, package, why) for every row: the README's table."""
    rows = [(role, n.name, n.package, n.why) for role, row in NEEDS.items() for n in row]
    rows += [(BY_FILESYSTEM, n.name, n.package, n.why) for n in MKFS.values()]
    rows += [(REHOME_WITH_VG, n.name, n.package, n.why) for n in _LVM_CREATE]
    return rows


ROLE_NAMES = {
    KVM_HOST: "KVM host",
    SOURCE: "dom0 (source)",
    REHOME: "dom0 (rehome_to)",
    GUEST: "guest (to KVM)",
    REHOME_GUEST: "guest (rehomed)",
    BY_FILESYSTEM: "KVM host, dom0 (rehome_to): per planned filesystem",
    REHOME_WITH_VG: "dom0 (rehome_to) with a `vg`",
}


def markdown() -> str:
    """The README's table: one row per role and package, the commands it provides."""
    rows: dict[tuple[str, str], list[str]] = {}
    whys: dict[tuple[str, str], list[str]] = {}
    for role, name, package, why in table():
        key = (ROLE_NAMES.get(role, role), package)
        rows.setdefault(key, []).append(f"`{name}`")
        if why not in whys.setdefault(key, []):
            whys[key].append(why)
    lines = ["| host | Debian package | commands | what runs them |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {role} | `{package}` | {', '.join(names)} | {'; '.join(whys[role, package])} |"
        for (role, package), names in rows.items()
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
