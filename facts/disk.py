"""
Facts about disks and filesystems: partition tables, filesystem signatures, ext features,
mounts and block device sizes.
"""

from __future__ import annotations

import json
import re

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

from facts.sections import sections
from xen2kvm.filesystems import mkfs_option

_BLKID_ESCAPE = re.compile(r"\\(.)")


def _json(output: list[str], what: str) -> dict:
    try:
        data = json.loads("\n".join(output))
    except ValueError as error:
        raise FactProcessError(f"{what} did not print JSON: {error}") from error
    if not isinstance(data, dict):
        raise FactProcessError(f"{what} printed JSON that is not an object")
    return data


class SfdiskPartitionTable(FactBase[dict | None]):
    """
    The partition table of a disk (or disk image), ``None`` when it has none. Starts and
    sizes are in sectors of ``sectorsize`` bytes.

    .. code:: python

        {
            "label": "dos", "id": "0x4d34989f", "sectorsize": 512,
            "partitions": [
                {"node": "/dev/vda1", "start": 2048, "size": 524288, "type": "83",
                 "bootable": True},
            ],
        }

    Sample ``sfdisk --json /dev/vda`` output::

        {
           "partitiontable": {
              "label": "dos", "id": "0x4d34989f", "device": "/dev/vda",
              "unit": "sectors", "sectorsize": 512,
              "partitions": [
                 {"node": "/dev/vda1", "start": 2048, "size": 524288, "type": "83",
                  "bootable": true}
              ]
           }
        }

    sfdisk fails on a device without a partition table; the command then succeeds
    without output if the device exists, and fails if it does not.
    """

    @override
    def requires_command(self, device: str) -> str:
        return "sfdisk"

    @override
    def command(self, device: str) -> StringCommand:
        path = QuoteString(device)
        # A device that does not exist (yet) has no table: a dry run over a fresh wave reads
        # this before the LV is created.
        return StringCommand("! test -e", path, "|| sfdisk --json", path, "2>/dev/null || true")

    @override
    def process(self, output: list[str]) -> dict | None:
        if not "".join(output).strip():
            return None  # the device has no partition table
        table = _json(output, "sfdisk --json").get("partitiontable")
        try:
            if table["unit"] != "sectors":
                raise FactProcessError(f"unexpected sfdisk unit: {table['unit']!r}")
            return {
                "label": table["label"],
                "id": table.get("id"),
                "sectorsize": int(table.get("sectorsize", 512)),
                "partitions": [
                    {
                        "node": part["node"],
                        "start": int(part["start"]),
                        "size": int(part["size"]),
                        "type": part["type"],
                        "bootable": bool(part.get("bootable", False)),
                    }
                    for part in table.get("partitions", [])
                ],
            }
        except (KeyError, TypeError, ValueError) as error:
            raise FactProcessError(f"unexpected sfdisk partition table: {error!r}") from error


class BlkidFilesystems(FactBase[dict]):
    """
    The signatures ``blkid`` finds on devices (all known devices when none is given), by
    device. Each maps the keys blkid prints other than ``DEVNAME`` (``TYPE``, ``UUID``,
    ``LABEL``, ``PTTYPE``, ...) to their values, unescaped.

    .. code:: python

        {
            "/dev/vda1": {"LABEL": "boot", "UUID": "5ab1e000-...", "TYPE": "ext4", ...},
            "/dev/vg0/g1": {"PTUUID": "cade1adf", "PTTYPE": "dos"},
        }

    Sample ``blkid -o export`` output::

        DEVNAME=/dev/vda1
        LABEL=boot
        UUID=5ab1e000-0000-4000-8000-00000000b001
        BLOCK_SIZE=1024
        TYPE=ext4
        PARTUUID=4d34989f-01

    blkid exits 2 when it finds nothing: that is an empty result, not an error.
    """

    default = dict

    @override
    def requires_command(self, devices: str | list[str] | None = None) -> str:
        return "blkid"

    @override
    def command(self, devices: str | list[str] | None = None) -> StringCommand:
        if isinstance(devices, str):
            devices = [devices]
        paths = [QuoteString(device) for device in devices or []]
        return StringCommand("blkid -o export", *paths, "|| test $? -eq 2")

    @override
    def process(self, output: list[str]) -> dict:
        found: dict = {}
        device = None
        for line in output:
            if not line.strip():
                device = None
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise FactProcessError(f"unexpected line in blkid output: {line!r}")
            value = _BLKID_ESCAPE.sub(r"\1", value)
            if key == "DEVNAME":
                device = value
                found[device] = {}
            elif device is None:
                raise FactProcessError(f"blkid output without DEVNAME before: {line!r}")
            else:
                found[device][key] = value
        return found


_DUMPE2FS_HEADER = "--- dumpe2fs -h"
_FEATURES = "Filesystem features:"


class Dumpe2fsFeatures(FactBase[dict]):
    """
    The features of the ext2/3/4 filesystem on each device, as ``dumpe2fs -h`` lists
    them (read-only: it reads the superblock), by device. One command for all devices.

    .. code:: python

        {
            "/dev/xenvg/web1-root": ["has_journal", "ext_attr", "resize_inode", "dir_index",
                                     "filetype", "needs_recovery", "extent", "64bit", ...],
            "/dev/xenvg/web1-old": [],
        }

    Sample output (each device's name, then what ``dumpe2fs -h`` prints of it, errors
    too)::

        --- dumpe2fs -h /dev/xenvg/web1-root
        dumpe2fs 1.47.0 (5-Feb-2023)
        Filesystem volume name:   root
        ...
        Filesystem features:      has_journal ext_attr resize_inode dir_index filetype ...
        ...
        --- dumpe2fs -h /dev/xenvg/web1-old
        dumpe2fs 1.47.0 (5-Feb-2023)
        ...
        Filesystem features:      (none)

    The features are kept as printed, states (``needs_recovery``) and names of features
    this dumpe2fs does not know (``FEATURE_C12``) too. dumpe2fs runs in the C locale (its
    labels are translated otherwise). A device without a features line (no ext filesystem
    there) is an error naming what dumpe2fs said; one with a features line is read even
    when dumpe2fs complains (a checksum it finds wrong: it prints the superblock all the
    same).
    """

    default = dict

    @override
    def requires_command(self, devices: str | list[str]) -> str:
        return "dumpe2fs"

    @override
    def command(self, devices: str | list[str]) -> StringCommand:
        if isinstance(devices, str):
            devices = [devices]
        paths = [QuoteString(device) for device in devices]
        # Each device's features line decides, not dumpe2fs's status (see process).
        return StringCommand(
            "for device in", *paths, "; do",
            f"printf '%s\\n' \"{_DUMPE2FS_HEADER} $device\";",
            'LC_ALL=C dumpe2fs -h "$device" 2>&1 || true; done',
        )  # fmt: skip

    @override
    def process(self, output: list[str]) -> dict:
        said = sections(output, _DUMPE2FS_HEADER, "dumpe2fs")
        found = {}
        for device, text in said.items():
            features = [
                line[len(_FEATURES) :].split() for line in text if line.startswith(_FEATURES)
            ]
            if len(features) != 1:
                errors = [line for line in text if line.startswith("dumpe2fs:")] or text[-1:]
                raise FactProcessError(
                    f"dumpe2fs -h {device} lists no filesystem features: {' '.join(errors)!r}"
                )
            found[device] = [] if features[0] == ["(none)"] else features[0]
        return found


_MKE2FS_ACCEPTS = "X2K-MKE2FS-ACCEPTS"
_SUPPORTED = "Supported features:"
_MKE2FS_VERSION = re.compile(r"mke2fs (\S+) \(")
# What mke2fs -n is given to size a filesystem it does not make: 1 GiB (in KiB).
_PROBE_SIZE = "1048576"


class Mke2fsFeatures(FactBase[dict]):
    """
    Whether this host's ``mke2fs`` makes an ext filesystem with exactly these features
    (``mke2fs -n -O none,...``: it says what it would do and makes nothing, on
    ``/dev/null``, given a size), and, when it refuses, its version and the features its
    e2fsprogs knows (``debugfs -R supported_features``), to name those it does not.

    .. code:: python

        {"accepts": True}
        {"accepts": False, "version": "1.46.2", "known": ["has_journal", "ext_attr", ...]}

    Sample output, refused (an older e2fsprogs than the features')::

        debugfs 1.46.2 (28-Feb-2021)
        Supported features: dir_prealloc imagic_inodes has_journal ext_attr ...
        mke2fs 1.46.2 (28-Feb-2021)
        \tUsing EXT2FS Library version 1.46.2
    """

    @override
    def requires_command(self, features: list[str], fstype: str = "ext4") -> str:
        return "mke2fs"

    @override
    def command(self, features: list[str], fstype: str = "ext4") -> StringCommand:
        return StringCommand(
            "LC_ALL=C mke2fs -n -F -q -t", QuoteString(fstype),
            "-O", QuoteString(mkfs_option(features)),
            "/dev/null", _PROBE_SIZE, f">/dev/null 2>&1 && echo {_MKE2FS_ACCEPTS} ||",
            "{ LC_ALL=C debugfs -R supported_features 2>/dev/null; LC_ALL=C mke2fs -V 2>&1; }",
        )  # fmt: skip

    @override
    def process(self, output: list[str]) -> dict:
        if _MKE2FS_ACCEPTS in (line.strip() for line in output):
            return {"accepts": True}
        known = next(
            (line[len(_SUPPORTED) :].split() for line in output if line.startswith(_SUPPORTED)),
            None,
        )
        version = next(
            (m.group(1) for line in output if (m := _MKE2FS_VERSION.match(line.strip()))), None
        )
        return {"accepts": False, "version": version, "known": known}


class FindmntMounts(FactBase[dict]):
    """
    The mounted filesystems by target. Of mounts stacked on one target the last (the
    visible one) is kept.

    .. code:: python

        {
            "/": {"source": "/dev/vda2", "fstype": "ext4",
                  "options": "rw,relatime,errors=remount-ro"},
            "/boot": {"source": "/dev/vda1", "fstype": "ext4", "options": "rw,relatime"},
        }

    Sample output (a tree: each mount lists those below it as ``children``)::

        {
           "filesystems": [
              {"target": "/", "source": "/dev/vda2", "fstype": "ext4",
               "options": "rw,relatime,errors=remount-ro",
               "children": [
                  {"target": "/boot", "source": "/dev/vda1", "fstype": "ext4",
                   "options": "rw,relatime"}
               ]}
           ]
        }
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "findmnt"

    @override
    def command(self) -> str:
        return "findmnt -J -o TARGET,SOURCE,FSTYPE,OPTIONS"

    @override
    def process(self, output: list[str]) -> dict:
        mounts: dict = {}
        if not "".join(output).strip():
            return mounts
        pending = list(reversed(_json(output, "findmnt -J").get("filesystems", [])))
        try:
            while pending:  # depth first, in findmnt's order
                mount = pending.pop()
                mounts[mount["target"]] = {
                    "source": mount["source"],
                    "fstype": mount["fstype"],
                    "options": mount["options"],
                }
                pending.extend(reversed(mount.get("children", [])))
        except (KeyError, TypeError) as error:
            raise FactProcessError(f"unexpected findmnt entry: {error!r}") from error
        return mounts


class BlockDeviceSize(FactBase[int | None]):
    """
    The size of a block device in bytes (``blockdev --getsize64``), for example a Xen
    guest's logical volume on the dom0.

    .. code:: python

        2147483648

    Sample output::

        2147483648
    """

    @override
    def requires_command(self, device: str) -> str:
        return "blockdev"

    @override
    def command(self, device: str) -> StringCommand:
        # A device that does not exist (yet) has no size: None, not a failure.
        path = QuoteString(device)
        return StringCommand("! test -e", path, "|| blockdev --getsize64", path)

    @override
    def process(self, output: list[str]) -> int | None:
        text = "".join(output).strip()
        if not text:
            return None
        if not text.isdigit():
            raise FactProcessError(f"blockdev --getsize64 did not print a size: {text!r}")
        return int(text)


_DEVICE_ID = re.compile(r"([0-9]+) (-|[0-9a-f]+:[0-9a-f]+)")


class BlockDeviceIds(FactBase[dict]):
    """
    Each path's block device number, ``major:minor`` in hex as ``stat`` prints it, whatever
    path names it (``/dev/vg0/web1-root`` and ``/dev/mapper/vg0-web1--root`` are one
    device); ``None`` for a path that is not a block device. One command for all the
    paths: the domains of a dom0 are read inside a cutover's downtime.

    .. code:: python

        {"/dev/xenvg/web1-root": "fe:3", "/srv/xen/old.img": None}

    Sample output (one line per path, by its place in ``devices``: no path is printed, so
    none, whatever it holds, can pass for another's answer)::

        0 fe:3
        1 -
    """

    default = dict

    @override
    def requires_command(self, devices: tuple[str, ...] | list[str] | str) -> str:
        return "stat"

    @override
    def command(self, devices: tuple[str, ...] | list[str] | str) -> StringCommand:
        self.devices = (devices,) if isinstance(devices, str) else tuple(devices)  # for process()
        paths = [QuoteString(device) for device in self.devices]
        return StringCommand(
            "i=0; for device in", *paths, "; do",
            'if test -b "$device"; then stat -L -c "$i %t:%T" -- "$device";',
            'else echo "$i -"; fi; i=$((i + 1)); done',
        )  # fmt: skip

    @override
    def process(self, output: list[str]) -> dict:
        numbers: dict[int, str | None] = {}
        for line in output:
            if not line.strip():
                continue
            said = _DEVICE_ID.fullmatch(line.strip())
            index = int(said.group(1)) if said else -1
            if not said or index >= len(self.devices) or index in numbers:
                raise FactProcessError(f"unexpected line where stat prints a number: {line!r}")
            numbers[index] = None if said.group(2) == "-" else said.group(2)
        missing = [device for i, device in enumerate(self.devices) if i not in numbers]
        if missing:
            raise FactProcessError(f"stat printed no device number for {missing[0]!r}")
        return {device: numbers[i] for i, device in enumerate(self.devices)}


class GrubBootCode(FactBase[bool | None]):
    """
    Whether a disk's first sector holds grub's boot code (``boot.img``, which
    ``grub-install`` writes before the partition table): ``True``, ``False`` (another
    loader's code, or none), ``None`` when the path is not a block device.

    .. code:: python

        True

    Sample output::

        grub
    """

    @override
    def requires_command(self, device: str) -> str:
        return "head"

    @override
    def command(self, device: str) -> StringCommand:
        path = QuoteString(device)
        # boot.img's messages sit in the code area: "GRUB \0Geom\0Hard Disk\0Read\0 Error".
        return StringCommand(
            "! test -b",
            path,
            "|| { head -c 440",
            path,
            "| tr -d '\\000' | grep -qa 'GRUB Geom' && echo grub || echo none; }",
        )

    @override
    def process(self, output: list[str]) -> bool | None:
        text = "".join(output).strip()
        if not text:
            return None
        if text not in ("grub", "none"):
            raise FactProcessError(f"unexpected answer about the boot code: {text!r}")
        return text == "grub"
