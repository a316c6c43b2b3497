"""What the deploy derives for each guest from the inventory alone (pure: no pyinfra).

``xen2kvm plan`` shows it before anything connects: where a guest comes from and goes to,
the destination's state directory, the new disk, the libvirt domain, its NICs, memory and
vCPUs, addresses and kernel. The values come from the code the deploy uses: the fleet
loader's defaults (``xen2kvm.inventory``), the journal's home (``fleet_access``),
``paths`` and the planner (``plan_domain``, given a Xen config that says nothing, so
that only the inventory's values show). What only the live Xen config and fstab say (the
Xen domain's name, the disks, their sizes, the filesystems, and memory, vCPUs and MACs
the inventory leaves to the config) is marked as read at plan time.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass
from typing import Any

from . import paths
from .fleet_access import destination
from .inventory import Fleet, Guest, move_group
from .planner import kernel_package, plan_domain
from .xenconfig import XenDomain

FROM_CONFIG = "from the Xen config"
WIDTH = 100  # the text is wrapped here
# What the plan phase reads on the hosts (and the first presync freezes on the destination).
FILESYSTEMS_READ = (
    "filesystems (the guest's /etc/fstab; on the dom0 their UUIDs and labels by blkid, the "
    "ext ones' features by dumpe2fs: the new ones are made with them)"
)
LIVE_KVM = (
    "Xen domain name",
    "disks (LVs on the dom0) and their sizes",
    FILESYSTEMS_READ,
    "guest LVs and the host LV's size",
)
LIVE_REHOME = (
    "Xen domain name",
    "disks (LVs on the dom0) and their sizes",
    FILESYSTEMS_READ,
    "new LVs (the old LVs' names, in the new dom0's VG)",
    "the new dom0's kernel release",
)


@dataclass(frozen=True)
class GuestOverview:
    """One guest's move as the inventory alone decides it; None: not known offline."""

    guest: str
    wave: int
    kind: str  # kvm, rehome
    source: str  # the dom0 it leaves
    xen_config: str  # on that dom0
    destination: str  # the KVM host, or the new dom0
    state_dir: str  # on the destination: journal, locks, plan inputs, tree
    plan_inputs: str  # frozen there at the first presync
    limit_group: str  # --limit this: the guest, its dom0, its destination
    target: str | None  # the host LV the KVM domain boots (KVM)
    layout: str | None  # matryoshka, plain (KVM)
    guest_vg: str | None  # the guest's own VG in the new disk (matryoshka)
    domain_name: str | None  # the libvirt domain (KVM)
    bridge: str | None  # the NICs' bridge (KVM)
    bridges: dict[str, str] | None  # a vif's Xen bridge -> its NIC's bridge (KVM), if not bridge
    macs: list[str] | None  # the inventory's MACs; None: from the Xen config
    new_macs: bool  # keep_macs false: new 52:54:00 MACs, one per Xen vif
    memory_mib: int | None  # None: from the Xen config
    vcpus: int | None  # None: from the Xen config
    virt_type: str | None
    machine: str | None
    serial_console: bool
    address: str  # where SSH reaches it
    ips: list[str]  # announced after the move
    interface: str
    arch: str
    kernel_package: str | None  # installed at prepare (KVM)
    new_vg: str | None  # rehome: the new dom0's VG for its LVs (None: they must exist)
    modules_packages: str | None  # rehome: where the new dom0's modules packages are
    live: list[str]  # what is read on the hosts at plan time

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def overview(fleet: Fleet, guest: Guest) -> GuestOverview:
    """``guest``'s move as the deploy derives it from ``fleet`` before it reads a host."""
    dest, state_dir = destination(fleet, guest)
    common: dict[str, Any] = {
        "guest": guest.name,
        "wave": guest.wave,
        "source": guest.xen_host,
        "xen_config": guest.xen_config,
        "destination": dest,
        "state_dir": state_dir,
        "plan_inputs": paths.plan_inputs(state_dir, guest.name),
        "limit_group": move_group(guest.name),
        "address": guest.address,
        "ips": list(guest.ips),
        "interface": guest.interface,
        "arch": guest.arch,
        "serial_console": guest.serial_console,
    }
    if guest.rehome_to:
        new = fleet.xen_hosts[guest.rehome_to]
        return GuestOverview(
            **common,
            kind="rehome",
            target=None,
            layout=None,
            guest_vg=None,
            domain_name=None,
            bridge=None,
            bridges=None,
            macs=None,
            new_macs=False,
            memory_mib=None,
            vcpus=None,
            virt_type=None,
            machine=None,
            kernel_package=None,
            new_vg=new.vg,
            modules_packages=new.modules_packages,
            live=list(LIVE_REHOME),
        )
    kvm = fleet.kvm_hosts[str(guest.kvm_host)]
    dom = plan_domain(guest, kvm, _silent_config(guest))
    live = list(LIVE_KVM)
    live += [] if guest.macs else ["NICs (one per vif)"]
    live += [] if guest.memory_mib else ["memory"]
    live += [] if guest.vcpus else ["vCPUs"]
    return GuestOverview(
        **common,
        kind="kvm",
        target=dom.disk_path,
        layout=dom.layout,
        guest_vg=guest.guest_vg if guest.layout == "matryoshka" else None,
        domain_name=dom.name,
        bridge=kvm.bridge,
        bridges=dict(kvm.bridges),
        macs=[nic.mac for nic in dom.nics[: len(guest.macs)]] or None,
        new_macs=not guest.keep_macs,
        memory_mib=dom.memory_mib if guest.memory_mib else None,
        vcpus=dom.vcpus if guest.vcpus else None,
        virt_type=dom.virt_type,
        machine=dom.machine,
        kernel_package=kernel_package(guest.arch, guest.kernel),
        new_vg=None,
        modules_packages=None,
        live=live,
    )


def _silent_config(guest: Guest) -> XenDomain:
    """A Xen config that says nothing: the planner then shows only the inventory's values."""
    return XenDomain(
        filename=f"{guest.xen_host}:{guest.xen_config}",
        name=None,
        type="pv",
        memory_mib=None,
        maxmem_mib=None,
        vcpus=None,
        cpus=None,
        disks=(),
        vifs=(),
        kernel=None,
        ramdisk=None,
        bootloader=None,
        root=None,
        extra=None,
        on_poweroff=None,
        on_reboot=None,
        on_crash=None,
        raw={},
        lines={},
    )


# --------------------------------------------------------------------------- the text


def rows(item: GuestOverview, deploy: str) -> list[tuple[str, str]]:
    """(label, value) lines for one guest; ``deploy`` is the pyinfra inventory to name."""
    out = [
        ("from", f"{item.source}:{item.xen_config}"),
        ("to", _to(item)),
        ("state dir", f"{item.destination}:{item.state_dir}"),
        ("plan inputs", f"{item.plan_inputs} (frozen at the first presync)"),
    ]
    if item.kind == "kvm":
        out += [
            ("disk", f"{item.target} ({_layout(item)})"),
            ("domain", f"{item.domain_name} ({item.virt_type}, machine {item.machine})"),
            ("NICs", f"{_nics(item)}, on bridge {item.bridge}{_by_xen_bridge(item)}"),
            ("memory", f"{item.memory_mib} MiB" if item.memory_mib else FROM_CONFIG),
            ("vCPUs", str(item.vcpus) if item.vcpus else FROM_CONFIG),
            ("console", "serial (ttyS0)" if item.serial_console else "no serial console"),
        ]
    else:
        vg = f"in VG {item.new_vg}" if item.new_vg else "existing ones (the dom0 has no vg)"
        out.append(("new LVs", f"{vg}, the old LVs' names and sizes"))
        if item.modules_packages:
            out.append(("modules from", item.modules_packages))
    ips = ", ".join(item.ips) or "none"
    out += [
        ("addresses", f"{item.address} (SSH); each announced where it is: {ips}"),
        ("arch", item.arch + (f", kernel {item.kernel_package}" if item.kernel_package else "")),
        ("limit", f"--limit {item.limit_group}"),
        ("read at plan time", ", ".join(item.live)),
        ("", f"pyinfra {deploy} deploy.py --limit {item.limit_group} --data phase=plan"),
    ]
    return out


def table(items: list[GuestOverview], deploy: str) -> str:
    """Every guest's lines, labels aligned, one block per guest."""
    blocks = []
    for item in items:
        lines = rows(item, deploy)
        width = max(len(label) for label, _ in lines)
        head = f"{item.guest} (wave {item.wave})"
        indent = " " * (width + 4)
        body = [
            textwrap.fill(
                f"  {label:<{width}}  {value}",
                WIDTH,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            )
            if label  # a command is never wrapped: it is copied whole
            else f"{indent}{value}"
            for label, value in lines
        ]
        blocks.append("\n".join([head, *body]))
    return "\n\n".join(blocks)


def _to(item: GuestOverview) -> str:
    if item.kind == "kvm":
        return f"KVM host {item.destination}"
    return f"dom0 {item.destination} (rehomed, stays on Xen)"


def _layout(item: GuestOverview) -> str:
    if item.layout == "matryoshka":
        return f"matryoshka: /boot on p1, guest VG {item.guest_vg} on p2"
    return f"{item.layout}: /boot on p1, one partition per filesystem"


def _by_xen_bridge(item: GuestOverview) -> str:
    """Where the KVM host's ``bridges`` sends a vif, by its Xen bridge (the NICs' own
    bridges are known once the Xen config is read at plan time)."""
    if not item.bridges:
        return ""
    return f" (vifs on {', '.join(f'{xen}: {kvm}' for xen, kvm in item.bridges.items())})"


def _nics(item: GuestOverview) -> str:
    if item.macs:
        return ", ".join(item.macs)
    if item.new_macs:
        return "new 52:54:00 MACs, one per vif of the Xen config"
    return f"{FROM_CONFIG} (its vifs and MACs)"
