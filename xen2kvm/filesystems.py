"""The filesystems xen2kvm makes, and the names a guest's fstab may give one (pure: no
pyinfra).

A new filesystem keeps its source's UUID and label (what ``blkid`` reads on the Xen LV):
an fstab entry ``UUID=...`` or ``LABEL=...`` then names the same filesystem after the
move, and is left as the guest wrote it. A partition's own tags (``PARTUUID=``,
``PARTLABEL=``) name nothing on a Xen partition disk, which has no partition table.
"""

from __future__ import annotations

FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "swap")  # what disk.filesystem makes
# The longest label each keeps, in bytes (e2label: 16, xfs_admin: 12, mkswap: 16).
LABEL_LIMITS = {"ext2": 16, "ext3": 16, "ext4": 16, "xfs": 12, "swap": 16}
FILESYSTEM_TAGS = ("UUID", "LABEL")  # kept by the new filesystem
PARTITION_TAGS = ("PARTUUID", "PARTLABEL")  # a partition table's: none on a Xen LV
IDENTITY = ("TYPE", "UUID", "LABEL", "PTTYPE")  # what the plan keeps of blkid's answer


def fstab_tag(device: str) -> tuple[str, str] | None:
    """``("UUID", "5ab1...")`` for the fstab device field ``UUID=5ab1...`` (unescaped), the
    same for ``LABEL=``, ``PARTUUID=`` and ``PARTLABEL=``; None for anything else (a
    device path, ``proc``, ``host:/export``). A value in quotes is taken without them, as
    libblkid takes it."""
    key, sep, value = device.partition("=")
    if not sep or key not in FILESYSTEM_TAGS + PARTITION_TAGS:
        return None
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value


def label_problem(fstype: str, label: str) -> str | None:
    """Why ``fstype`` cannot carry ``label``, or None (an unknown type: mkfs decides)."""
    limit = LABEL_LIMITS.get(fstype)
    if limit is not None and len(label.encode()) > limit:
        return f"{len(label.encode())} bytes; {fstype} labels hold at most {limit}"
    return None
