"""
Manage LVM logical volumes: the disks of the migrated guests on the KVM host.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError, QuoteString, StringCommand, operation

from facts.lvm import LvmLogicalVolumes, LvmVolumeGroups

# lvm(8), "VALID NAMES": these characters, no leading hyphen, not "." or "..", at most
# 127 characters; LV names may not start with "snapshot" or "pvmove", nor hold the
# suffixes LVM gives its internal volumes. Such names need no shell quoting: they are
# quoted all the same.
_NAME = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")
_LV_RESERVED_PREFIXES = ("snapshot", "pvmove")
_LV_RESERVED_PARTS = (
    "_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage",
    "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin",
)  # fmt: skip


def _check_name(label: str, value: object, is_lv: bool) -> None:
    problem = None
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value in (".", ".."):
        problem = "use letters, digits and + _ . - (not first), at most 127"
    elif is_lv and value.startswith(_LV_RESERVED_PREFIXES):
        problem = f"LVM reserves names starting with {' or '.join(_LV_RESERVED_PREFIXES)}"
    elif is_lv and any(part in value for part in _LV_RESERVED_PARTS):
        problem = "LVM reserves names holding the suffixes of its internal volumes"
    if problem:
        raise OperationValueError(f"{label} {value!r} is not a valid LVM name: {problem}")


def round_to_extents(size: int, extent_size: int) -> int:
    """The size LVM gives a volume asked to be ``size`` bytes: whole extents, rounded up."""
    return -(-size // extent_size) * extent_size


def _plan(existing: dict | None, vg: dict, size: int | None) -> tuple[str, int]:
    """What to do for a volume that should exist: (action, bytes it should have)."""
    if existing is None:
        if size is None:
            return "missing-size", 0
        return "create", round_to_extents(size, vg["extent_size"])
    if size is None:
        return "keep", existing["size"]
    wanted = round_to_extents(size, vg["extent_size"])
    if existing["size"] > wanted:
        return "larger", wanted
    if existing["size"] == wanted:
        return "keep", wanted
    return "extend", wanted


@operation()
def logical_volume(vg: str, lv: str, size: int | None = None, present: bool = True):
    """
    Create, grow or remove an LVM logical volume. It is never shrunk.

    + vg: the volume group
    + lv: the logical volume's name (not ``name``: pyinfra takes that for the operation's)
    + size: its size in bytes, rounded up to whole extents as LVM does (needed to create)
    + present: whether the logical volume should exist

    A volume larger than ``size`` is left as it is. Removal is refused while the volume
    is open (a guest runs on it, or it is mounted).

    **Example:**

    .. code:: python

        lvm.logical_volume(
            name="Disk of web1",
            vg="vg0",
            lv="web1-disk",
            size=10 * 1024**3,
        )
    """
    _check_name("vg", vg, is_lv=False)
    _check_name("lv", lv, is_lv=True)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise OperationValueError(f"size must be a positive number of bytes, not {size!r}")

    volume = f"{vg}/{lv}"
    existing = host.get_fact(LvmLogicalVolumes).get(volume)

    if not present:
        if existing is None:
            host.noop(f"logical volume {volume} is already absent")
            return
        if existing["active"] and existing["open"]:
            raise OperationValueError(
                f"logical volume {volume} is open on {host.name} (a running guest or a "
                "mount uses it): stop its user before removing it"
            )
        yield StringCommand("lvremove --yes", QuoteString(volume))
        return

    group = host.get_fact(LvmVolumeGroups).get(vg)
    if group is None:
        raise OperationError(f"volume group {vg} does not exist on {host.name}")
    action, wanted = _plan(existing, group, size)

    if action == "missing-size":
        raise OperationValueError(f"logical volume {volume} does not exist: give its size")
    if action == "keep":
        host.noop(f"logical volume {volume} already exists with {wanted} bytes")
        return
    if action == "larger":
        host.noop(
            f"logical volume {volume} already exists with {existing['size']} bytes, more "
            f"than the {wanted} asked: it is not shrunk"
        )
        return

    needed = wanted - (existing["size"] if existing else 0)
    if needed > group["free"]:
        raise OperationError(
            f"volume group {vg} on {host.name} lacks free space for {volume}: "
            f"needs {needed} bytes, has {group['free']} bytes free"
        )
    if action == "create":
        yield StringCommand(
            "lvcreate --yes --wipesignatures y -n",
            QuoteString(lv),
            f"-L {wanted}b",
            QuoteString(vg),
        )
    else:
        yield StringCommand(f"lvextend -L {wanted}b", QuoteString(volume))
