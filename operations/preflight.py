"""
Checks before a wave changes anything: each raises ``OperationError`` naming the host,
the guest and the cause, or reports (``host.noop``) that all is ready. They never change
a host.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError, operation
from pyinfra.facts.files import Directory

from facts.debian import DebianArchitecture
from facts.libvirt import LibvirtDomains
from facts.lvm import LvmVolumeGroups
from facts.xen import XenConfigFile
from xen2kvm.errors import XenConfigError
from xen2kvm.inventory import GUEST_ARCHES
from xen2kvm.units import human
from xen2kvm.xenconfig import parse_xen_config


@operation()
def kvm_host(vg: str, bridge: str, need_bytes: int = 0, check_bridge: bool = True):
    """
    Check a KVM host is ready to receive guests: its volume group exists with room for
    them, its libvirt answers and its bridge exists.

    + vg: the host volume group the guests' disks go in
    + bridge: the bridge the guests' NICs join
    + need_bytes: the room the guests still need in ``vg``
    + check_bridge: whether the bridge is on this host (not so when libvirt is remote)

    **Example:**

    .. code:: python

        preflight.kvm_host(vg="vg0", bridge="br0", need_bytes=8 * 1024**3)
    """
    if need_bytes < 0:
        raise OperationValueError(f"need_bytes must not be negative: {need_bytes}")
    groups = host.get_fact(LvmVolumeGroups)
    if vg not in groups:
        known = ", ".join(sorted(groups)) or "none"
        raise OperationError(f"{host.name}: volume group {vg} not found (found: {known})")
    free = groups[vg]["free"]
    if need_bytes > free:
        raise OperationError(
            f"{host.name}: volume group {vg} has {human(free)} free, the wave needs "
            f"{human(need_bytes)}"
        )
    host.get_fact(LibvirtDomains)  # fails the fact (and the run) when libvirt does not answer
    if check_bridge and not host.get_fact(Directory, path=f"/sys/class/net/{bridge}/bridge"):
        raise OperationError(f"{host.name}: bridge {bridge} does not exist")
    where = f"bridge {bridge} is up" if check_bridge else f"bridge {bridge} is libvirt's to check"
    host.noop(f"{vg} has {human(free)} free, libvirt answers, {where}")
    yield from ()  # a check: never a command


@operation()
def xen_config(guest: str, path: str):
    """
    Check a guest's Xen config exists on its dom0 and parses.

    + guest: the guest's name (for messages)
    + path: its config file on this dom0

    **Example:**

    .. code:: python

        preflight.xen_config(guest="web1", path="/etc/xen/web1.cfg")
    """
    text = host.get_fact(XenConfigFile, path=path)
    if text is None:
        raise OperationError(f"{guest}: its Xen config {path} is not on {host.name}")
    try:
        domain = parse_xen_config(text, f"{host.name}:{path}")
    except XenConfigError as exc:
        raise OperationError(f"{guest}: {exc}") from None
    disks = ", ".join(disk.vdev for disk in domain.disks if not disk.cdrom)
    host.noop(f"{guest}: {path} parses ({domain.type}, {domain.memory_mib} MiB, disks {disks})")
    yield from ()  # a check: never a command


@operation()
def guest(arch: str):
    """
    Check a guest answers and runs the userland the inventory says.

    + arch: the dpkg architecture the inventory gives (``amd64`` or ``i386``)

    **Example:**

    .. code:: python

        preflight.guest(arch="i386")
    """
    if arch not in GUEST_ARCHES:
        raise OperationValueError(f"arch must be one of {', '.join(GUEST_ARCHES)}, not {arch!r}")
    found = host.get_fact(DebianArchitecture)
    if found != arch:
        raise OperationError(f"{host.name}: the inventory says {arch}, the guest runs {found}")
    host.noop(f"{host.name} answers, {arch} userland")
    yield from ()  # a check: never a command
