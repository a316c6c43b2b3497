"""The lab fleet as the lab builds it: read from ``inventory/lab.yml`` (the contract).

Only what the lab needs to build and run its hosts: names, addresses, arch, the guests'
Xen disks (vdevs, sizes, mount points) and stable Xen MACs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


@dataclass(frozen=True)
class Disk:
    role: str  # root, var, srv, swap: the LV is <guest>-<role>
    vdev: str  # xvda2 ...
    size_mib: int
    mountpoint: str | None  # None for swap


@dataclass(frozen=True)
class Guest:
    name: str
    address: str
    ips: tuple[str, ...]
    arch: str  # Debian arch: amd64 or i386
    xen_host: str
    disks: tuple[Disk, ...]
    # The dom0 it is rehomed to (wave 3's 32-bit guest). Left out of repr: the guest
    # images' cache stamp hashes repr(guest), and where a guest moves changes no image.
    rehome_to: str | None = field(default=None, repr=False)

    @property
    def init(self) -> str:
        """The guest's init system, as in the field report's era."""
        return "sysvinit" if self.arch == "i386" else "systemd"

    @property
    def mac(self) -> str:
        return xen_mac(self.name)

    @property
    def extra_ips(self) -> tuple[str, ...]:
        return tuple(ip for ip in self.ips if ip != self.address)


@dataclass(frozen=True)
class Host:
    """Any lab host reachable over SSH (guests, dom0s, KVM hosts)."""

    name: str
    address: str
    kind: str  # guest, xen, kvm


@dataclass(frozen=True)
class Fleet:
    guests: tuple[Guest, ...]
    xen_hosts: tuple[Host, ...]
    hosts: tuple[Host, ...] = field(default=())

    def guest(self, name: str) -> Guest:
        for guest in self.guests:
            if guest.name == name:
                return guest
        raise KeyError(f"no guest {name!r} in the lab inventory")

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        names = ", ".join(h.name for h in self.hosts)
        raise KeyError(f"no host {name!r} in the lab inventory (known: {names})")


def inventory_path() -> Path:
    return Path(os.environ.get("XEN2KVM_LAB_INVENTORY", REPO_ROOT / "inventory" / "lab.yml"))


def xen_mac(name: str) -> str:
    """A stable Xen-style MAC (00:16:3e is Xen's OUI) derived from the guest's name."""
    digest = hashlib.sha256(name.encode()).digest()
    return "00:16:3e:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x7F, digest[1], digest[2]))


def guest_disks(name: str) -> tuple[Disk, ...]:
    """Xen LVs of a lab guest: root, /var, swap (and /srv on mail1), like xen-tools made them."""
    disks = [
        Disk("root", "xvda2", 1536, "/"),
        Disk("var", "xvda3", 512, "/var"),
        Disk("swap", "xvda1", 128, None),
    ]
    if name == "mail1":
        disks.append(Disk("srv", "xvda4", 256, "/srv"))
    return tuple(disks)


def load(path: Path | None = None) -> Fleet:
    data = yaml.safe_load((path or inventory_path()).read_text())
    guests = []
    for name, spec in (data.get("guests") or {}).items():
        address = str(spec["address"])
        ips = tuple(str(ip) for ip in spec.get("ips") or [address])
        guests.append(
            Guest(
                name=name,
                address=address,
                ips=ips if address in ips else (address, *ips),
                arch=str(spec.get("arch", "amd64")),
                xen_host=str(spec["xen_host"]),
                disks=guest_disks(name),
                rehome_to=spec.get("rehome_to"),
            )
        )
    xen = tuple(Host(n, str(s["address"]), "xen") for n, s in (data.get("xen_hosts") or {}).items())
    kvm = tuple(Host(n, str(s["address"]), "kvm") for n, s in (data.get("kvm_hosts") or {}).items())
    hosts = (*xen, *kvm, *(Host(g.name, g.address, "guest") for g in guests))
    return Fleet(guests=tuple(guests), xen_hosts=xen, hosts=hosts)
