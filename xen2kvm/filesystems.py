"""The filesystems xen2kvm makes, and the names a guest's fstab may give one (pure: no
pyinfra).

A new filesystem keeps its source's UUID and label (what ``blkid`` reads on the Xen LV):
an fstab entry ``UUID=...`` or ``LABEL=...`` then names the same filesystem after the
move, and is left as the guest wrote it. A partition's own tags (``PARTUUID=``,
``PARTLABEL=``) name nothing on a Xen partition disk, which has no partition table.

A new ext2/3/4 filesystem also has its source's features (what ``dumpe2fs -h`` lists on
the Xen LV), not the destination's mke2fs defaults: the guest checks it at boot with its
own e2fsck, and its grub reads it on every kernel upgrade. Debian 13's mke2fs (1.47.2)
adds ``orphan_file``, which Debian 11's e2fsck (1.46.2) refuses ("Get a newer version of
e2fsck"), and ``metadata_csum_seed``, which grub before 2.12 (Debian 11's 2.04, 12's
2.06) calls an unknown filesystem. The source's features are the ones the guest's tools
have been handling all along.

Examples::

    >>> mkfs_features(["has_journal", "ext_attr", "needs_recovery", "extent"], 8 * 2**30)
    ('has_journal', 'ext_attr', 'extent')
    >>> mkfs_option(("has_journal", "extent"))
    'none,has_journal,extent'
"""

from __future__ import annotations

from collections.abc import Iterable

FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "swap")  # what disk.filesystem makes
EXT = ("ext2", "ext3", "ext4")  # made by mke2fs, with the source's features when known
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


# ext features -------------------------------------------------------------------------

# dumpe2fs names a feature its own e2fsprogs does not know by its bit, FEATURE_<C|I|R><n>
# (compat, incompat, ro_compat): an older dom0 reading a newer guest's filesystem (Debian
# 11's 1.46.2 prints orphan_file as FEATURE_C12). The names of those e2fsprogs 1.42 to
# 1.47 added, as lib/e2p/feature.c gives them.
FEATURE_BITS = {
    "FEATURE_C9": "sparse_super2",
    "FEATURE_C10": "fast_commit",
    "FEATURE_C11": "stable_inodes",
    "FEATURE_C12": "orphan_file",
    "FEATURE_R8": "quota",
    "FEATURE_R9": "bigalloc",
    "FEATURE_R10": "metadata_csum",
    "FEATURE_R11": "replica",
    "FEATURE_R12": "read-only",
    "FEATURE_R13": "project",
    "FEATURE_R14": "shared_blocks",
    "FEATURE_R15": "verity",
    "FEATURE_R16": "orphan_present",
    "FEATURE_I8": "mmp",
    "FEATURE_I10": "ea_inode",
    "FEATURE_I12": "dirdata",
    "FEATURE_I13": "metadata_csum_seed",
    "FEATURE_I14": "large_dir",
    "FEATURE_I15": "inline_data",
    "FEATURE_I16": "encrypt",
    "FEATURE_I17": "casefold",
}

# What dumpe2fs may list that mke2fs does not make: states of a filesystem in use
# (needs_recovery: its journal holds transactions, as a mounted one's does;
# orphan_present: its orphan file holds inodes), flags of other tools (e2image's
# shared_blocks, read-only, Lustre's dirdata) and features mke2fs no longer makes. mke2fs
# 1.47 refuses each ("Invalid filesystem option set"), but journal_dev, which it takes to
# make an external journal, not a filesystem.
NOT_MADE = frozenset(
    {
        "needs_recovery", "orphan_present", "journal_dev", "compression", "dir_prealloc",
        "imagic_inodes", "lazy_bg", "snapshot_bitmap", "replica", "read-only",
        "shared_blocks", "dirdata",
    }
)  # fmt: skip

# Beyond 2^32 blocks of 4 KiB (mke2fs's block size there) an ext filesystem needs 64bit,
# and mke2fs leaves resize_inode out (its reserved descriptors address 32-bit blocks).
BLOCKS_32BIT_LIMIT = 2**32 * 4096

# /boot's features when the root filesystem's are not known (it is not ext, or its plan
# inputs were frozen before xen2kvm read them): Debian 11's and 12's mke2fs defaults for
# ext4, which every release xen2kvm moves reads, with grub 2.04 on and e2fsck 1.46.2 on.
# Not the KVM host's own defaults: Debian 13's add metadata_csum_seed and orphan_file
# (see the module's docstring).
BOOT_FEATURES = (
    "has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "64bit",
    "flex_bg", "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize",
    "metadata_csum",
)  # fmt: skip


def feature_name(word: str) -> str:
    """A feature as mke2fs takes it: dumpe2fs's ``FEATURE_C12`` is ``orphan_file``."""
    return FEATURE_BITS.get(word, word)


def mkfs_features(found: Iterable[str], size: int) -> tuple[str, ...]:
    """The features to make a new ext filesystem of ``size`` bytes with, from those
    ``dumpe2fs`` lists on its source (``found``), in their order: each by the name mke2fs
    takes, without what mke2fs does not make (``NOT_MADE``).

    A filesystem grown past 16 TiB (``BLOCKS_32BIT_LIMIT``) gets ``64bit`` if it lacks it
    (every release xen2kvm moves reads 64bit: e2fsck since 1.42, grub since 2.00) and
    loses ``resize_inode`` (mke2fs would drop it there); ValueError when it has no
    ``extent``, which 64bit needs. A larger size is no other matter: mke2fs sizes
    resize_inode's reserve and the group descriptors (``meta_bg`` or not) for the new size.
    """
    wanted = [name for name in map(feature_name, found) if name not in NOT_MADE]
    if size < BLOCKS_32BIT_LIMIT:
        return tuple(wanted)
    if "64bit" not in wanted:
        if "extent" not in wanted:
            raise ValueError(
                "an ext filesystem without extents holds at most 16 TiB (2^32 blocks of 4 "
                "KiB): keep it under that, or make it ext4 with extents on Xen first"
            )
        wanted.append("64bit")
    return tuple(f for f in wanted if f != "resize_inode")


def mkfs_option(features: Iterable[str]) -> str:
    """mke2fs's ``-O`` value that makes exactly ``features`` ("none" clears its defaults
    first, those of the host's /etc/mke2fs.conf)."""
    return ",".join(["none", *features])
