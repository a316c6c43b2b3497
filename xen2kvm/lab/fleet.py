"""The lab fleet: ``inventory/lab.yml`` read by the deploy's loader, and what only the lab says.

Hosts, addresses, arches and where each guest goes come from ``load_fleet`` (the same
reading and checks as the deploy; there is no second parser of the file here). What the
fleet file does not say and the lab must build is kept apart, under "Lab-only settings":
each guest's Xen disks (vdevs, sizes, mount points, how its fstab names them, their
filesystems' UUIDs and labels), its stable Xen MAC, its Xen domain's name and the
Debian release it runs (``Guest.suite``: the schema refuses keys it does not know, so a
lab-only key in lab.yml would break the fleet file's checks; ``SUITES`` holds it here).

A lab guest is known by its Xen domain's name (``Guest.name``): its dom0's config says
``name = '<it>'``, and its container, namespace, LVs, host name and the lab's SSH aliases
use it. That is the first label of its inventory name (``Guest.inventory_name``), as on a
fleet whose inventory names guests by FQDN while xen-tools named the domains: lab.yml's
``mail1.fleet.example`` is the domain ``mail1`` (issue #11). Its config file is where the
inventory says (``xen_config``, by default ``<xen_config_dir>/<inventory name>.cfg``): only
the config's ``name =`` tells the tool the domain's name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from xen2kvm.inventory import Fleet as FleetFile
from xen2kvm.inventory import Guest as FleetGuest
from xen2kvm.inventory import load_fleet
from xen2kvm.lab.config import BACKEND_SUBNET, BACKEND_XEN_BRIDGE

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
FS_UUID_NAMESPACE = uuid.UUID("0d5c1a8e-6b4f-5e2a-9c3d-7f1e2a3b4c5d")


@dataclass(frozen=True, repr=False)
class Disk:
    role: str  # root, var, srv, swap: the LV is <guest>-<role>
    vdev: str  # xvda2 ...
    size_mib: int
    mountpoint: str | None  # None for swap
    fstab_by: str = "device"  # how the guest's fstab names it: device (/dev/xvdaN), LABEL, UUID

    def __repr__(self) -> str:
        # Hashed into the image's cache stamp (Guest.__repr__): a disk its fstab names by
        # device keeps the form it always had.
        by = "" if self.fstab_by == "device" else f", fstab_by={self.fstab_by!r}"
        return (
            f"Disk(role={self.role!r}, vdev={self.vdev!r}, size_mib={self.size_mib!r}, "
            f"mountpoint={self.mountpoint!r}{by})"
        )


@dataclass(frozen=True, repr=False)
class Guest:
    """A lab guest: the fleet's guest (lab.yml) and the disks the lab builds for it."""

    fleet: FleetGuest
    disks: tuple[Disk, ...]

    @property
    def name(self) -> str:
        """The Xen domain's name (the config's ``name =``): the lab's name for the guest."""
        return xen_name(self.fleet.name)

    @property
    def inventory_name(self) -> str:
        """Its name in lab.yml: what deploy.py, its journal and libvirt call it."""
        return self.fleet.name

    @property
    def xen_config(self) -> str:
        """Its config file on its dom0, where the inventory says it is."""
        return self.fleet.xen_config

    @property
    def address(self) -> str:
        return self.fleet.address

    @property
    def ips(self) -> tuple[str, ...]:
        return self.fleet.ips

    @property
    def arch(self) -> str:
        """Debian arch: amd64 or i386."""
        return self.fleet.arch

    @property
    def xen_host(self) -> str:
        return self.fleet.xen_host

    @property
    def rehome_to(self) -> str | None:
        """The dom0 it is rehomed to (wave 3's 32-bit guest)."""
        return self.fleet.rehome_to

    def __repr__(self) -> str:
        # The guest images' cache stamp hashes repr(guest): what makes the image, in the
        # form it always had. Where a guest moves (rehome_to) changes no image.
        return (
            f"Guest(name={self.name!r}, address={self.address!r}, ips={self.ips!r}, "
            f"arch={self.arch!r}, xen_host={self.xen_host!r}, disks={self.disks!r})"
        )

    def __hash__(self) -> int:  # the fleet's guest holds mappings: hash what repr shows
        return hash(repr(self))

    @property
    def suite(self) -> str:
        """The Debian suite it runs (``bookworm``, mail1's ``trixie``): ``SUITES``."""
        return guest_suite(self.name, self.arch)

    @property
    def init(self) -> str:
        """The guest's init system, as in the field report's era."""
        return "sysvinit" if self.arch == "i386" else "systemd"

    @property
    def mac(self) -> str:
        return xen_mac(self.name)

    @property
    def extra_ips(self) -> tuple[str, ...]:
        """Its service addresses on eth0 (the lab network), besides ``address``."""
        return tuple(ip for ip in self.ips if ip != self.address and not _backend(ip))

    @property
    def backend_ips(self) -> tuple[str, ...]:
        """Its addresses on the backend network: a second vif, on xenbr1, holds them."""
        return tuple(ip for ip in self.ips if _backend(ip))

    @property
    def backend_mac(self) -> str:
        """Its second vif's MAC (stable, Xen's OUI), when it has ``backend_ips``."""
        return xen_mac(f"{self.name}/{BACKEND_XEN_BRIDGE}")

    def fs_uuid(self, disk: Disk) -> str:
        """The UUID of the filesystem (or swap) on one of its disks: stable per guest and
        role, so its fstab can name it and a rebuilt image is the same."""
        return fs_uuid(self.name, disk.role)

    def fs_label(self, disk: Disk) -> str:
        """Its label (``mail1-var``): at most 16 bytes, as ext4 and swap take."""
        return f"{self.name}-{disk.role}"[:16]

    def fstab_device(self, disk: Disk) -> str:
        """The fstab's first field for one of its disks: ``/dev/xvda3``, ``LABEL=...`` or
        ``UUID=...``, as ``disk.fstab_by`` says."""
        if disk.fstab_by == "LABEL":
            return f"LABEL={self.fs_label(disk)}"
        if disk.fstab_by == "UUID":
            return f"UUID={self.fs_uuid(disk)}"
        return f"/dev/{disk.vdev}"


@dataclass(frozen=True)
class Host:
    """Any lab host reachable over SSH (guests, dom0s, KVM hosts)."""

    name: str
    address: str
    kind: str  # guest, xen, kvm
    migration_address: str | None = None  # on the migration network (br1), where lab.yml sets one
    aliases: tuple[str, ...] = ()  # a guest's inventory name, where it is not ``name``


@dataclass(frozen=True)
class Fleet:
    guests: tuple[Guest, ...]
    xen_hosts: tuple[Host, ...]
    hosts: tuple[Host, ...] = field(default=())
    fleet: FleetFile | None = field(default=None, repr=False, compare=False)  # as lab.yml says

    def guest(self, name: str) -> Guest:
        """A guest by its lab (Xen domain) name or its inventory name."""
        for guest in self.guests:
            if name in (guest.name, guest.inventory_name):
                return guest
        raise KeyError(f"no guest {name!r} in the lab inventory")

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if name == host.name or name in host.aliases:
                return host
        names = ", ".join(h.name for h in self.hosts)
        raise KeyError(f"no host {name!r} in the lab inventory (known: {names})")


def inventory_path() -> Path:
    return Path(os.environ.get("XEN2KVM_LAB_INVENTORY", REPO_ROOT / "inventory" / "lab.yml"))


def load(path: Path | None = None) -> Fleet:
    """The lab fleet from ``lab.yml``, read and checked by ``load_fleet``."""
    fleet = load_fleet(path or inventory_path())
    guests = tuple(Guest(g, guest_disks(xen_name(g.name))) for g in fleet.guests.values())
    xen = tuple(
        Host(h.name, h.address, "xen", h.migration_address) for h in fleet.xen_hosts.values()
    )
    kvm = tuple(
        Host(h.name, h.address, "kvm", h.migration_address) for h in fleet.kvm_hosts.values()
    )
    hosts = (
        *xen,
        *kvm,
        *(
            Host(
                g.name,
                g.address,
                "guest",
                aliases=(g.inventory_name,) * (g.inventory_name != g.name),
            )
            for g in guests
        ),
    )
    return Fleet(guests=guests, xen_hosts=xen, hosts=hosts, fleet=fleet)


# --- Lab-only settings: what lab.yml does not say and the lab builds -------------------


def xen_name(inventory_name: str) -> str:
    """The lab's Xen domain name for a guest: its inventory name's first label."""
    return inventory_name.split(".", 1)[0]


def _backend(ip: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(BACKEND_SUBNET)


DEFAULT_SUITE = "bookworm"
# The guests that run another Debian release than DEFAULT_SUITE, by Xen domain
# name. Issue #11 asks for a production-shaped lab with a Debian 13 guest (mail1) and a
# Debian 11 one: the 32-bit guests, as old as a fleet's oldest (legacy1 moves to KVM,
# legacy2 to the 64-bit dom0).
SUITES = {"mail1": "trixie", "legacy1": "bullseye", "legacy2": "bullseye"}
# The suites with an i386 kernel for the migration to install (trixie has none).
I386_SUITES = ("bullseye", "bookworm")


def guest_suite(name: str, arch: str) -> str:
    """The Debian suite a lab guest runs: ``SUITES``, else ``DEFAULT_SUITE``. An i386
    guest runs one of ``I386_SUITES``: trixie has no i386 kernel to migrate with."""
    suite = SUITES.get(name, DEFAULT_SUITE)
    if arch == "i386" and suite not in I386_SUITES:
        raise ValueError(
            f"lab guest {name}: {suite} i386 has no kernel to migrate with: give it "
            f"one of {', '.join(I386_SUITES)} (xen2kvm.lab.fleet.SUITES)"
        )
    return suite


def xen_mac(name: str) -> str:
    """A stable Xen-style MAC (00:16:3e is Xen's OUI) derived from the guest's name."""
    digest = hashlib.sha256(name.encode()).digest()
    return "00:16:3e:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x7F, digest[1], digest[2]))


def fs_uuid(guest: str, role: str) -> str:
    """A stable filesystem UUID for one of a lab guest's LVs."""
    return str(uuid.uuid5(FS_UUID_NAMESPACE, f"{guest}\0{role}"))


def guest_disks(name: str) -> tuple[Disk, ...]:
    """Xen LVs of a lab guest: root, /var, swap (and /srv on mail1), like xen-tools made them.
    mail1's fstab names /var by its label and /srv by its UUID, as installers write it
    (issue #11); the others name every disk by its Xen device."""
    mail1 = name == "mail1"
    disks = [
        Disk("root", "xvda2", 1536, "/"),
        Disk("var", "xvda3", 512, "/var", fstab_by="LABEL" if mail1 else "device"),
        Disk("swap", "xvda1", 128, None),
    ]
    if mail1:
        disks.append(Disk("srv", "xvda4", 256, "/srv", fstab_by="UUID"))
    return tuple(disks)
