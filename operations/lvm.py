"""
Manage LVM logical volumes: the disks of the migrated guests on the KVM host.
"""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError, QuoteString, StringCommand, operation

from facts.disk import BlkidFilesystems
from facts.lvm import LvmLogicalVolumes, LvmPhysicalVolumes, LvmVolumeGroups
from operations.util.checks import check_bool
from operations.util.facts import fact
from operations.util.udev import settled
from xen2kvm.devices import device_aliases

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
    existing = fact(host, LvmLogicalVolumes).get(volume)

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

    group = fact(host, LvmVolumeGroups).get(vg)
    if group is None:
        if host.state.is_executing or size is None:
            raise OperationError(f"volume group {vg} does not exist on {host.name}")
        # Planning a run in which an earlier operation creates the VG (a dry run of a
        # fresh wave): the LV would be created then, rounded by LVM to its extent size.
        yield StringCommand(
            "lvcreate --yes --wipesignatures y -n", QuoteString(lv), f"-L {size}b", QuoteString(vg)
        )
        return
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


def _check_devices(devices: object) -> list[str]:
    if isinstance(devices, str) or not isinstance(devices, (list, tuple)) or not devices:
        raise OperationValueError(f"devices must be a non-empty list of paths, not {devices!r}")
    for device in devices:
        if not isinstance(device, str) or not device.startswith("/") or "\n" in device:
            raise OperationValueError(f"devices must be absolute paths, not {device!r}")
    if len(set(devices)) != len(devices):
        raise OperationValueError(f"devices repeat: {devices}")
    return list(devices)


def _pv_of(pvs: dict, device: str) -> tuple[str, dict] | tuple[None, None]:
    """The PV entry of ``device`` (pvs names an LV or kpartx mapping /dev/mapper/...)."""
    for alias in sorted(device_aliases(device)):
        if alias in pvs:
            return alias, pvs[alias]
    return None, None


@operation()
def volume_group(vg: str, devices: list[str], present: bool = True):
    """
    Create or remove an LVM volume group, such as the guest's own VG on partition 2 of
    its disk on the KVM host.

    + vg: the volume group (not ``name``: pyinfra takes that for the operation's)
    + devices: its physical volumes; each is made a PV (``pvcreate``) unless it is one
    + present: whether the volume group should exist

    An existing VG on other PVs, a device that is a PV of another VG and a device holding
    a filesystem are errors. Removal (``vgremove``, which removes its LVs) is refused while
    one of its LVs is open.

    **Example:**

    .. code:: python

        lvm.volume_group(
            name="Guest VG of web1",
            vg="web1-vg",
            devices=["/dev/mapper/vg0-web1p2"],
        )
    """
    _check_name("vg", vg, is_lv=False)
    devices = _check_devices(devices)
    groups = fact(host, LvmVolumeGroups)

    if not present:
        if vg not in groups:
            host.noop(f"volume group {vg} is already absent")
            return
        volumes = fact(host, LvmLogicalVolumes)
        busy = sorted(key for key, lv in volumes.items() if lv["vg"] == vg and lv["open"])
        if busy:
            raise OperationError(
                f"volume group {vg} on {host.name} has open logical volumes ({', '.join(busy)}):"
                " unmount them before removing it"
            )
        yield StringCommand("vgremove -y", QuoteString(vg))
        return

    pvs = fact(host, LvmPhysicalVolumes)
    if vg in groups:
        have = sorted(name for name, pv in pvs.items() if pv["vg"] == vg)
        want = sorted(name for name, _ in (_pv_of(pvs, device) for device in devices) if name)
        if have != want or len(want) != len(devices):
            raise OperationError(
                f"volume group {vg} on {host.name} exists on {', '.join(have)}, not on "
                f"{', '.join(devices)}: check which VG this is before going on"
            )
        host.noop(f"volume group {vg} already exists on {', '.join(devices)}")
        return

    to_create = []
    for device in devices:
        _, pv = _pv_of(pvs, device)
        if pv is not None and pv["vg"]:
            raise OperationError(
                f"{device} on {host.name} is a PV of volume group {pv['vg']}, not {vg}"
            )
        if pv is None:
            found = fact(host, BlkidFilesystems, devices=device).get(device, {})
            if found.get("TYPE") or found.get("PTTYPE"):
                what = found.get("TYPE") or f"a {found['PTTYPE']} partition table"
                raise OperationError(
                    f"{device} on {host.name} holds {what}: it is not made a PV; check what "
                    "is on it"
                )
            to_create.append(device)
    for device in to_create:
        yield StringCommand("pvcreate -ff -y", QuoteString(device))
    yield StringCommand("vgcreate", QuoteString(vg), *(QuoteString(d) for d in devices))


@operation()
def volume_group_active(vg: str, active: bool = True):
    """
    Activate or deactivate the logical volumes of a volume group (``vgchange``), for
    example the guest's VG on the KVM host before its disk is unmapped.

    + vg: the volume group
    + active: whether its logical volumes should be active

    Deactivation first waits until udev and LVM's event activations are done
    (``operations.util.udev``). It is refused while one of its LVs is open (mounted, or
    a guest runs on it).
    A VG that does not exist has nothing to deactivate; activating it is left to
    ``vgchange``, which fails (it may be made by an earlier operation of the same run).

    **Example:**

    .. code:: python

        lvm.volume_group_active(name="Release web1's VG", vg="web1-vg", active=False)
    """
    _check_name("vg", vg, is_lv=False)
    check_bool("active", active)
    volumes = {
        key: lv for key, lv in sorted(fact(host, LvmLogicalVolumes).items()) if lv["vg"] == vg
    }

    if active:
        exists = vg in fact(host, LvmVolumeGroups)  # (an empty VG has no LV to list)
        if exists and all(lv["active"] for lv in volumes.values()):
            host.noop(f"logical volumes of {vg} are already active ({len(volumes)})")
            return
        yield StringCommand("vgchange -ay", QuoteString(vg))
        return

    if not any(lv["active"] for lv in volumes.values()):
        host.noop(f"logical volumes of {vg} are already inactive")
        return
    busy = [key for key, lv in volumes.items() if lv["open"]]
    # Planning (--dry): the unmounts before this operation have not run yet.
    if busy and host.state.is_executing:
        raise OperationError(
            f"{', '.join(busy)} on {host.name} is open (mounted, or a guest runs on it): "
            f"unmount or stop its user before deactivating {vg}"
        )
    # An autoactivation udev still has queued would activate the VG again after this.
    yield StringCommand(settled(), "&& vgchange -an", QuoteString(vg))
