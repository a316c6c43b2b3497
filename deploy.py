"""
xen2kvm: move a wave of Xen domUs to KVM, one pyinfra run per wave.

    pyinfra inventory/prod.py deploy.py --limit wave1            # everything that is due
    pyinfra inventory/prod.py deploy.py --limit wave1 --data phase=plan

Phases, in order: plan (checks, no changes), then prepare, presync, cutover, and
rollback on demand. This version implements ``plan``; the other phases are refused with
a clear message until they exist.
"""

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError

from operations import preflight
from xen2kvm.pyinfra_inventory import fleet_for, selected_guests

PHASES = ("plan", "prepare", "presync", "cutover", "rollback")
IMPLEMENTED = ("plan",)

phase = host.data.get("phase") or "plan"
if phase not in PHASES:
    raise PyinfraError(f"--data phase={phase}: not one of {', '.join(PHASES)}")
if phase not in IMPLEMENTED:
    raise PyinfraError(f"--data phase={phase}: not implemented yet (available: plan)")

fleet = fleet_for(host)
role = host.data.get("x2k_role")

if role == "kvm_host":
    kvm = fleet.kvm_hosts[host.name]
    preflight.kvm_host(
        name=f"KVM host {kvm.name} is ready",
        vg=kvm.vg,
        bridge=kvm.bridge,
        check_bridge=kvm.libvirt_uri.startswith("qemu:///"),
    )
elif role == "xen_host":
    for guest in selected_guests(host):
        if guest.xen_host == host.name:
            preflight.xen_config(
                name=f"Xen config of {guest.name} parses",
                guest=guest.name,
                path=guest.xen_config,
            )
elif role == "guest":
    guest = fleet.guests[host.name]
    preflight.guest(name=f"{guest.name} answers, {guest.arch}", arch=guest.arch)
