"""
Manage the disk of a migrated guest on the KVM host: its partition table, the kpartx
mappings of its partitions, filesystems and mounts. Nothing here overwrites data: a
device holding something else than asked is an error, never a reason to rewrite it.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError, QuoteString, StringCommand, operation

from facts.disk import BlkidFilesystems, BlockDeviceSize, FindmntMounts, SfdiskPartitionTable
from facts.kpartx import KpartxMappings
from operations.util.checks import check_bool, check_path
from operations.util.facts import fact
from operations.util.tree import checked
from operations.util.udev import settled
from xen2kvm.devices import device_aliases
from xen2kvm.filesystems import EXT, FILESYSTEMS, LABEL_LIMITS, mkfs_option

SECTOR = 512
MBR_LIMIT = 2**32  # sectors an MBR entry can address
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TYPE = re.compile(r"(0x)?[0-9a-fA-F]{1,2}")
_FEATURE = re.compile(r"[A-Za-z0-9_]+")  # has_journal, 64bit, FEATURE_C13
# Partition tables -----------------------------------------------------------------


def _field(partition: Any, key: str, default: Any = None) -> Any:
    if isinstance(partition, dict):
        return partition.get(key, default)
    return getattr(partition, key, default)


def normalize_partitions(partitions: Iterable[Any]) -> list[dict]:
    """Partitions as dicts sorted by number, checked as an MBR table (OperationValueError)."""
    if isinstance(partitions, (str, bytes, dict)) or not isinstance(partitions, Iterable):
        raise OperationValueError(f"partitions must be a list, not {partitions!r}")
    wanted = []
    for partition in partitions:
        entry = {key: _field(partition, key) for key in ("number", "start", "size", "type")}
        entry["bootable"] = bool(_field(partition, "bootable", False))
        for key in ("number", "start", "size"):
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise OperationValueError(f"partition {key} must be a positive integer: {entry}")
        if not isinstance(entry["type"], str) or not _TYPE.fullmatch(entry["type"]):
            raise OperationValueError(f"partition type must be an MBR type in hex: {entry}")
        entry["type"] = f"{int(entry['type'], 16):x}"
        if entry["type"] == "0":
            raise OperationValueError(f"partition type 0 marks an empty slot: {entry}")
        wanted.append(entry)
    wanted.sort(key=lambda entry: entry["number"])
    _check_layout(wanted)
    return wanted


def _check_layout(wanted: list[dict]) -> None:
    numbers = [entry["number"] for entry in wanted]
    if len(set(numbers)) != len(numbers):
        raise OperationValueError(f"partition numbers repeat: {numbers}")
    primaries = [entry for entry in wanted if entry["number"] <= 4]
    logicals = [entry for entry in wanted if entry["number"] > 4]
    extended = [entry for entry in primaries if int(entry["type"], 16) in EXTENDED_TYPES]
    if len(extended) > 1:
        raise OperationValueError("an MBR table holds at most one extended partition")
    if [entry["number"] for entry in logicals] != list(range(5, 5 + len(logicals))):
        raise OperationValueError(
            f"logical partitions are numbered 5, 6, ... without gaps, not {numbers}"
        )
    if logicals and not extended:
        raise OperationValueError("logical partitions (5 and up) need an extended partition")
    for entry in wanted:
        if entry["start"] + entry["size"] > MBR_LIMIT:
            raise OperationValueError(f"partition {entry['number']} ends past what MBR addresses")
    _check_overlaps(primaries, "primary")
    if extended:
        ext = extended[0]
        for entry in logicals:  # each logical has its EBR in the sector before it
            if entry["start"] <= ext["start"] or _end(entry) > _end(ext):
                raise OperationValueError(
                    f"logical partition {entry['number']} is not inside extended partition "
                    f"{ext['number']} (with a sector before it for its EBR)"
                )
        _check_overlaps([{**e, "start": e["start"] - 1, "size": e["size"] + 1} for e in logicals],
                        "logical")  # fmt: skip


def _end(entry: dict) -> int:
    return entry["start"] + entry["size"]


def _check_overlaps(entries: list[dict], kind: str) -> None:
    ordered = sorted(entries, key=lambda entry: entry["start"])
    for first, second in pairwise(ordered):
        if second["start"] < _end(first):
            raise OperationValueError(
                f"{kind} partitions {first['number']} and {second['number']} overlap"
            )


def table_difference(existing: dict, label: str, wanted: list[dict]) -> str | None:
    """How an existing table differs from the wanted one (the first difference), or None.
    The disk id is ignored."""
    if existing["label"] != label:
        return f"it has a {existing['label']} label, not {label}"
    found = {}
    for part in existing["partitions"]:
        number = re.search(r"(\d+)$", part["node"])
        if number is None:
            return f"partition {part['node']} has no number"
        found[int(number[1])] = {
            "start": part["start"],
            "size": part["size"],
            "type": f"{int(part['type'], 16):x}" if _TYPE.fullmatch(part["type"]) else part["type"],
            "bootable": part["bootable"],
        }
    wanted_by_number = {entry["number"]: entry for entry in wanted}
    for number in sorted(set(found) | set(wanted_by_number)):
        if number not in wanted_by_number:
            return f"partition {number} exists and is not wanted"
        if number not in found:
            return f"partition {number} is missing"
        for key in ("start", "size", "type", "bootable"):
            if found[number][key] != wanted_by_number[number][key]:
                return (
                    f"partition {number} has {key} {found[number][key]}, "
                    f"wanted {wanted_by_number[number][key]}"
                )
    return None


def sfdisk_script(label: str, wanted: list[dict]) -> list[str]:
    """The lines of an sfdisk script for the table. Each partition is named (``p5 :``):
    sfdisk takes the number from the name, so gaps and logical partitions keep theirs."""
    lines = [f"label: {label}", "unit: sectors"]
    for entry in wanted:
        line = (
            f"p{entry['number']} : start={entry['start']}, size={entry['size']}, "
            f"type={entry['type']}"
        )
        lines.append(line + (", bootable" if entry["bootable"] else ""))
    return lines


@operation()
def partition_table(device: str, partitions: Iterable[Any], label: str = "dos"):
    """
    Write an MBR partition table on a disk that has none. An existing table is never
    rewritten: the same table is left as it is, another one is an error.

    + device: the disk, for example the guest's LV ``/dev/vg0/web1``
    + partitions: dicts (or objects, like the planner's ``Partition``) with ``number``,
      ``start`` and ``size`` in 512-byte sectors, ``type`` (MBR type in hex: ``83``,
      ``8e``, ``82``, ``5`` extended) and ``bootable``; logical partitions are 5, 6, ...
    + label: the table type; only ``dos`` (MBR)

    Removing a table is refused by design: ``partitions=[]`` on a disk with partitions is
    "another table". sfdisk wipes old signatures from the disk and from the new
    partitions (``-w always -W always``), so no stale filesystem shows through.

    **Example:**

    .. code:: python

        disk.partition_table(
            name="Partition the disk of web1",
            device="/dev/vg0/web1",
            partitions=plan.partitions,
        )
    """
    check_path("device", device)
    if label != "dos":
        raise OperationValueError(f"label must be dos (MBR), not {label!r}")
    wanted = normalize_partitions(partitions)

    existing = fact(host, SfdiskPartitionTable, device=device)
    if existing is not None:
        difference = table_difference(existing, label, wanted)
        if difference:
            raise OperationError(
                f"{device} on {host.name} already holds another partition table ({difference}):"
                " partition tables are never rewritten; check what is on it and wipe it by "
                "hand (wipefs -a) if it is not needed"
            )
        host.noop(f"{device} already has the partition table ({len(wanted)} partitions)")
        return

    size = fact(host, BlockDeviceSize, device=device)
    for entry in wanted:
        if size is not None and _end(entry) * SECTOR > size:
            raise OperationError(
                f"partition {entry['number']} ends at byte {_end(entry) * SECTOR}, past the "
                f"end of {device} on {host.name} ({size} bytes)"
            )
    lines = [QuoteString(line) for line in sfdisk_script(label, wanted)]
    yield StringCommand(
        "printf '%s\\n'",
        *lines,
        "| sfdisk --no-reread --no-tell-kernel -q -w always -W always",
        QuoteString(device),
    )


# kpartx mappings -------------------------------------------------------------------


@operation()
def partition_mappings(device: str, mapped: bool = True):
    """
    Map (or unmap) the partitions of a disk with ``kpartx -p p``: partition N of
    ``/dev/vg0/web1`` becomes ``/dev/mapper/vg0-web1pN`` (see ``mapping_path``).

    + device: the partitioned disk, for example ``/dev/vg0/web1``
    + mapped: whether its partitions should be mapped

    A disk without partitions has nothing to map. After mapping, it waits until udev and
    the LVM autoactivation udev starts for a VG on the partitions are done
    (``operations.util.udev``), so that a later ``vgchange -an`` and unmap don't race them.
    Unmapping is refused while a mapping is open (mounted, or a PV of an active VG):
    unmount and deactivate first.

    **Example:**

    .. code:: python

        disk.partition_mappings(name="Map web1's partitions", device="/dev/vg0/web1")
    """
    check_path("device", device)
    check_bool("mapped", mapped)

    mappings = fact(host, KpartxMappings, device=device)
    names = sorted(mappings)
    taken = [name for name in names if mappings[name]["taken"]]
    if taken:
        raise OperationError(
            f"/dev/mapper/{', '.join(taken)} on {host.name} already exists and is not the "
            f"mapping of a partition of {device}: rename that device first"
        )
    if mapped:
        if not mappings:
            host.noop(f"{device} has no partitions to map")
            return
        if all(mappings[name]["mapped"] for name in names):
            host.noop(f"partitions of {device} already mapped: {', '.join(names)}")
            return
        yield StringCommand("kpartx -a -s -p p", QuoteString(device))
        # udev activates a VG found on the new mappings a moment later: let it finish.
        yield settled()
        return

    if not any(mappings[name]["mapped"] for name in names):
        host.noop(f"partitions of {device} already not mapped")
        return
    busy = [name for name in names if mappings[name]["open"]]
    # Planning (--dry): the unmounts and deactivations before this have not run yet.
    if busy and host.state.is_executing:
        raise OperationError(
            f"{', '.join(busy)} on {host.name} is in use (mounted, or a PV of an active VG): "
            "unmount it and deactivate its VG before unmapping"
        )
    yield StringCommand("kpartx -d -s -p p", QuoteString(device))


# Filesystems -----------------------------------------------------------------------


def _mkfs(
    device: str,
    fstype: str,
    uuid: str | None,
    label: str | None,
    options: list[str],
    features: list[str] | None = None,
) -> StringCommand:
    # The features first: the inventory's options come after, and edit them (mke2fs
    # applies its -O options in turn).
    made = [] if features is None else ["-O", QuoteString(mkfs_option(features))]
    extra = [*made, *(QuoteString(word) for word in options)]
    if fstype == "swap":
        parts: list[Any] = ["mkswap", *extra]
        if uuid:
            parts += ["-U", QuoteString(uuid)]
    elif fstype == "xfs":
        parts = ["mkfs.xfs -q -f", *extra]
        if uuid:
            parts += ["-m", QuoteString(f"uuid={uuid}")]
    else:
        parts = [f"mkfs.{fstype} -q -F", *extra]
        if uuid:
            parts += ["-U", QuoteString(uuid)]
    if label:
        parts += ["-L", QuoteString(label)]
    return StringCommand(*parts, QuoteString(device))


def _what(found: dict) -> str:
    if found.get("TYPE"):
        return found["TYPE"]
    return f"a {found['PTTYPE']} partition table" if found.get("PTTYPE") else "nothing"


@operation()
def filesystem(
    device: str,
    fstype: str,
    uuid: str | None = None,
    label: str | None = None,
    present: bool = True,
    force: bool = False,
    options: str | None = None,
    features: list[str] | tuple[str, ...] | None = None,
):
    """
    Make a filesystem (or swap) on a device that holds none. Whatever is already there
    is never overwritten: the same type is left as it is, anything else is an error.

    + device: the block device, for example ``/dev/mapper/vg0-web1p1``
    + fstype: ``ext2``, ``ext3``, ``ext4``, ``xfs`` or ``swap``
    + uuid: the UUID to give it (the source's, so the guest's fstab still matches); when
      given, an existing filesystem with another UUID is an error
    + label: its label; when given, an existing filesystem with another label is an error
    + present: ``False`` erases the signature (``wipefs -a``), only with ``force=True``
    + force: allow ``present=False`` to destroy the filesystem
    + options: extra options for mkfs, split as a shell would and each quoted, for example
      ``-O ^metadata_csum,^64bit`` (ext4 that kernels before 3.18 mount read-write); an
      existing filesystem is not checked against them
    + features: ext2/3/4 only: the features to make it with, exactly (``mke2fs -O
      none,has_journal,...``: "none" clears this host's defaults first), such as its
      source's (``xen2kvm.filesystems.mkfs_features``); ``options`` apply after them.
      None: mkfs's defaults, from this host's ``/etc/mke2fs.conf``. An existing ext2,
      ext3 or ext4 filesystem is then taken for ``fstype``: blkid names one by its
      features (ext3's, made by ``mkfs.ext4``, read as ext3); it is not checked against
      them either

    **Example:**

    .. code:: python

        disk.filesystem(
            name="/boot of web1",
            device="/dev/mapper/vg0-web1p1",
            fstype="ext4",
            uuid="5ab1e000-0000-4000-8000-00000000b001",
            features=["has_journal", "ext_attr", "resize_inode", "dir_index", "filetype",
                      "extent", "64bit", "flex_bg", "sparse_super", "large_file",
                      "huge_file", "dir_nlink", "extra_isize", "metadata_csum"],
        )
    """
    check_path("device", device)
    if fstype not in FILESYSTEMS:
        raise OperationValueError(f"fstype must be one of {', '.join(FILESYSTEMS)}: {fstype!r}")
    if uuid is not None and (not isinstance(uuid, str) or not _UUID.fullmatch(uuid)):
        raise OperationValueError(f"uuid must be a UUID like 5ab1e000-0000-4000-8000-..., {uuid!r}")
    if label is not None and (
        not isinstance(label, str) or not label or len(label.encode()) > LABEL_LIMITS[fstype]
    ):
        raise OperationValueError(
            f"label for {fstype} must be 1 to {LABEL_LIMITS[fstype]} bytes: {label!r}"
        )
    if options is not None and not isinstance(options, str):
        raise OperationValueError(f"options must be a string of mkfs options: {options!r}")
    try:
        words = shlex.split(options or "")
    except ValueError as exc:
        raise OperationValueError(f"options cannot be split as a shell would: {exc}") from None
    if features is not None:
        if fstype not in EXT:
            raise OperationValueError(f"features are ext2/3/4's (mke2fs -O), not {fstype}'s")
        if isinstance(features, str) or not all(
            isinstance(name, str) and _FEATURE.fullmatch(name) for name in features
        ):
            raise OperationValueError(
                f"features must be a list of ext feature names (has_journal, 64bit), not "
                f"{features!r}"
            )
        features = list(features)

    found = fact(host, BlkidFilesystems, devices=device).get(device, {})
    has_something = bool(found.get("TYPE") or found.get("PTTYPE"))

    if not present:
        if not has_something:
            host.noop(f"{device} already holds no filesystem")
            return
        if not force:
            raise OperationError(
                f"{device} on {host.name} holds {_what(found)}: erasing it needs force=True"
            )
        yield StringCommand("wipefs -a", QuoteString(device))
        return

    if not has_something:
        yield _mkfs(device, fstype, uuid, label, words, features)
        return
    held = found.get("TYPE")
    if held != fstype and not (features is not None and held in EXT):
        raise OperationError(
            f"{device} on {host.name} holds {_what(found)}, wanted {fstype}: it is not "
            "overwritten; check what is on it"
        )
    for key, value, have in (
        ("UUID", uuid and uuid.lower(), found.get("UUID", "").lower()),
        ("LABEL", label, found.get("LABEL", "")),
    ):
        if value is not None and have != value:
            raise OperationError(
                f"{device} on {host.name} holds {held} with {key} {found.get(key)!r}, wanted "
                f"{value!r}: it is not made again; check what is on it"
            )
    host.noop(f"{device} already holds {held}")
    yield from ()


# Mounts ----------------------------------------------------------------------------


# What a mount of a guest's filesystems needs on this host: the guest's device nodes and
# set-uid programs mean nothing here, and nothing of the guest runs here.
RESTRICTIONS = ("nodev", "nosuid", "noexec")
TREE_OPTIONS = ",".join(RESTRICTIONS)  # what a tree's mounts take (options=)


def _read_only(options: str) -> bool:
    return "ro" in options.split(",")


def missing_restrictions(current: str, wanted: str) -> list[str]:
    """The restrictions (``nodev``, ``nosuid``, ``noexec``) asked for in ``wanted`` that a
    mount with ``current`` options lacks. Restrictions it has beyond those are kept."""
    have, want = set(current.split(",")), set(wanted.split(","))
    return [flag for flag in RESTRICTIONS if flag in want and flag not in have]


@operation()
def mount(
    device: str,
    path: str,
    mounted: bool = True,
    options: str = "defaults",
    fstype: str | None = None,
    root: str | None = None,
):
    """
    Mount (or unmount) a device, for the time of the migration (not in ``/etc/fstab``).

    + device: the block device; an LV may be given as ``/dev/VG/LV`` or
      ``/dev/mapper/VG-LV`` (findmnt reports the latter)
    + path: the mount point, made when missing
    + mounted: whether the device should be mounted there
    + options: mount options; ``ro`` also requires an existing mount to be read-only, and
      ``nodev``, ``nosuid`` and ``noexec`` are added to an existing mount that lacks them
      (``mount -o remount``)
    + fstype: the filesystem type (``mount -t``), found by mount when not given
    + root: the guest's tree that ``path`` is in (its content came from the guest):
      mounting is refused when a component of ``path`` below ``root`` is a symbolic link
      (``mount`` follows it, out of the tree onto this host)

    A mount of another device on ``path``, or a read-write mount where ``ro`` is asked
    (and the reverse), is an error, not remounted.

    **Example:**

    .. code:: python

        disk.mount(
            name="/var of web1's new disk",
            device="/dev/mapper/web1-var",
            path="/var/lib/xen2kvm/target/web1/var",
            options="nodev,nosuid,noexec",
            root="/var/lib/xen2kvm/target/web1",
        )
    """
    check_path("device", device)
    check_path("path", path)
    if not isinstance(options, str) or not options or any(c.isspace() for c in options):
        raise OperationValueError(f"options must be a comma-separated list: {options!r}")
    if fstype is not None and (not isinstance(fstype, str) or not re.fullmatch(r"[\w.]+", fstype)):
        raise OperationValueError(f"fstype must be a filesystem type like ext4: {fstype!r}")

    target = posixpath.normpath(path)
    if root is not None:
        check_path("root", root)
        base = posixpath.normpath(root)
        if target != base and not target.startswith(base.rstrip("/") + "/"):
            raise OperationValueError(f"path {path!r} is not in the tree {root!r}")
        if mounted and target != base:
            checked(base, target[len(base.rstrip("/")) :], ("directory",), "mount")

    current = _ours(fact(host, FindmntMounts).get(target), device, target)

    if not mounted:
        if current is None:
            host.noop(f"{device} is already not mounted on {target}")
            return
        yield StringCommand("umount", QuoteString(target))
        return

    if current is None:
        yield StringCommand("mkdir -p", QuoteString(target))
        kind = ["-t", QuoteString(fstype)] if fstype else []
        yield StringCommand("mount", *kind, "-o", QuoteString(options), QuoteString(device),
                            QuoteString(target))  # fmt: skip
        return
    if _read_only(current["options"]) != _read_only(options):
        have, want = ("ro", "rw") if _read_only(current["options"]) else ("rw", "ro")
        raise OperationError(
            f"{device} is mounted {have} on {target} on {host.name}, wanted {want}: "
            "unmount it first"
        )
    if fstype and current["fstype"] != fstype:
        raise OperationError(
            f"{device} is mounted on {target} on {host.name} as {current['fstype']}, not {fstype}"
        )
    missing = missing_restrictions(current["options"], options)
    if missing:
        yield StringCommand(
            "mount -o", QuoteString(",".join(["remount", *missing])), QuoteString(target)
        )
        return
    host.noop(f"{device} is already mounted on {target} ({current['options']})")
    yield from ()


def _ours(current: dict | None, device: str, target: str) -> dict | None:
    """``findmnt``'s mount on ``target`` (``None``: nothing there), an error when another
    device than ``device`` is mounted there."""
    if current is not None and current["source"] not in device_aliases(device):
        raise OperationError(
            f"{target} on {host.name} is mounted from {current['source']}, not {device}"
        )
    return current


@operation()
def unmounted(mounts: Iterable[tuple[str, str]]):
    """
    Unmount several mounts of one tree in one command: the children before their parents
    (the reverse of the order given, which is the order they were mounted in). What is
    not mounted is left as it is.

    + mounts: ``(device, mount point)`` pairs, parents first, as ``disk.mount`` mounted
      them; an LV may be given as ``/dev/VG/LV`` or ``/dev/mapper/VG-LV``

    Another device mounted on one of the mount points is an error, and nothing is
    unmounted.

    **Example:**

    .. code:: python

        disk.unmounted(
            name="web1's new disk unmounted",
            mounts=[
                ("/dev/mapper/web1-root", "/var/lib/xen2kvm/target/web1"),
                ("/dev/mapper/web1-var", "/var/lib/xen2kvm/target/web1/var"),
            ],
        )
    """
    if isinstance(mounts, (str, bytes)) or not isinstance(mounts, Iterable):
        raise OperationValueError(f"mounts must be (device, mount point) pairs: {mounts!r}")
    pairs = list(mounts)
    if not pairs:
        raise OperationValueError("mounts must name at least one (device, mount point)")
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise OperationValueError(f"mounts must be (device, mount point) pairs: {pair!r}")
        check_path("device", pair[0])
        check_path("path", pair[1])

    found = fact(host, FindmntMounts)
    targets = []
    for device, path in reversed(pairs):
        target = posixpath.normpath(path)
        if _ours(found.get(target), device, target) is not None:
            targets.append(target)
    if not targets:
        host.noop(f"none of {', '.join(posixpath.normpath(p) for _, p in pairs)} is mounted")
        return
    bits: list[Any] = []
    for target in targets:
        bits += [*(["&&"] if bits else []), "umount", QuoteString(target)]
    yield StringCommand(*bits)
