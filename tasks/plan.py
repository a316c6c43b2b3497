"""
plan: checks only, no changes. The KVM hosts have room and libvirt, the dom0s hold
parsable configs for the wave's guests, the guests answer and run the planned userland.
"""

from operations import preflight
from tasks import common

role = common.role()

if role == "kvm_host":
    items = common.work("kvm_host")
    if items:
        kvm = items[0].kvm
        preflight.kvm_host(
            name=f"KVM host {kvm.name} is ready",
            vg=kvm.vg,
            bridge=kvm.bridge,
            planned_lvs={item.plan.host_lv: item.plan.host_lv_size for item in items},
            check_bridge=kvm.libvirt_uri.startswith("qemu:///"),
        )

if role == "xen_host":
    for item in common.work("xen_host"):
        preflight.xen_config(
            name=f"Xen config of {item.guest.name} parses",
            guest=item.guest.name,
            path=item.guest.xen_config,
        )

if role == "guest":
    for item in common.work("name"):
        if not item.migrated:
            preflight.guest(name=f"{item.guest.name} answers", arch=item.guest.arch)
