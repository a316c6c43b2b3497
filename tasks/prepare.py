"""
prepare: in each running Xen guest, what its KVM boot will need, installed at native speed
and harmless on Xen (the field report: the guest simply ignores them): a kernel for its
architecture, grub-pc, lvm2, and an initramfs with virtio and device-mapper drivers.
"""

from io import StringIO

from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from tasks import common

INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "dm-mod")

if common.role() == "guest":
    for item in common.work("name"):
        if item.migrated or item.cutover_started:  # nothing to add once it is being moved
            continue
        guest = item.guest
        installed = apt.packages(
            name=f"{guest.name}: kernel, grub-pc and lvm2 for booting under KVM",
            packages=[item.plan.kernel_package, "grub-pc", "lvm2", "initramfs-tools", "rsync"],
            no_recommends=True,
            update=True,
            cache_time=3600,
        )
        changes = [installed]
        for module in INITRAMFS_MODULES:
            changes.append(
                files.line(
                    name=f"{guest.name}: initramfs loads {module}",
                    path="/etc/initramfs-tools/modules",
                    line=module,
                )
            )
        changes.append(
            files.put(
                name=f"{guest.name}: initramfs waits for no resume device (the Xen swap name)",
                src=StringIO("RESUME=none\n"),
                dest="/etc/initramfs-tools/conf.d/resume",
            )
        )
        server.shell(
            name=f"{guest.name}: rebuild the initramfs",
            commands=["update-initramfs -u -k all"],
            _if=any_changed(*changes),
        )
