"""
presync: no downtime, repeatable. On the KVM host, the guest's new disk in the planned
layout (host LV, partition table, the guest's VG and LVs, filesystems), mounted as a tree;
then each filesystem copied from the running guest with rsync, and the fix-ups that the
final copy will not undo (fstab, persistent-net rules, grub settings, the serial getty,
grub on the new disk). Each rerun sends only the difference.
"""

from operations import disk, flow, journal, lvm, plans, preflight, sync
from operations.disk import mapping_path
from tasks import common, steps
from tasks.steps import copy_steps, fixups
from xen2kvm import paths

role = common.role()

# pyinfra runs operations in the order of these lines, across hosts: the KVM host's key
# first, then the guests let it in, then the KVM host builds and copies.
if role == "kvm_host":
    # A guest whose cutover an earlier run began is left to the cutover: it may be stopped.
    items = [
        item for item in common.work("kvm_host") if not item.migrated and not item.cutover_started
    ]
    if items:
        journal.tool(name="x2k-journal, the migration journal's tool")
        sync.key(name="the migration key", path=paths.migration_key(items[0].kvm))

flow.barrier(name="presync: the migration keys exist", label="migration keys")

if role == "guest":
    for item in common.work("name"):
        if item.migrated or item.cutover_started:
            continue
        sync.access(
            name=f"{item.guest.name}: {item.kvm.name} may read it with rsync",
            key_host=item.kvm.name,
            key_path=paths.migration_key(item.kvm),
            from_address=common.kvm_address(item.kvm),
            root="/",
        )

flow.barrier(name="presync: the guests let their KVM host read them", label="access")

if role == "kvm_host":
    for item in items:
        kvm, guest, plan = item.kvm, item.guest, item.plan
        lv = plan.disk_path
        plans.frozen(name=f"{guest.name}: freeze its plan", guest=guest.name)
        preflight.domain_stopped(
            name=f"{guest.name}: its KVM domain does not run", domain=plan.domain.name
        )
        lvm.logical_volume(
            name=f"{guest.name}: host LV {lv}", vg=kvm.vg, lv=plan.host_lv, size=plan.host_lv_size
        )
        disk.partition_table(
            name=f"{guest.name}: partition table on {lv}", device=lv, partitions=plan.partitions
        )
        disk.partition_mappings(name=f"{guest.name}: map the partitions of {lv}", device=lv)
        disk.filesystem(
            name=f"{guest.name}: /boot filesystem",
            device=mapping_path(lv, 1),
            fstype="ext4",
            uuid=plan.boot_uuid,
            label="boot",
            options=guest.mkfs_options.get("ext4"),
        )
        if plan.layout == "matryoshka" and plan.guest_vg:
            lvm.volume_group(
                name=f"{guest.name}: guest VG {plan.guest_vg}",
                vg=plan.guest_vg,
                devices=[mapping_path(lv, 2)],
            )
            for volume in plan.volumes:
                lvm.logical_volume(
                    name=f"{guest.name}: guest LV {volume.name}",
                    vg=plan.guest_vg,
                    lv=volume.name,
                    size=volume.size,
                )
            lvm.volume_group_active(
                name=f"{guest.name}: guest VG {plan.guest_vg} active", vg=plan.guest_vg
            )
        for volume in plan.volumes:
            device = (
                volume.device
                if plan.layout == "matryoshka"
                else mapping_path(lv, volume.partition or 0)
            )
            disk.filesystem(
                name=f"{guest.name}: {volume.fstype} on {device}",
                device=device,
                fstype=volume.fstype,
                label=volume.name[:16],
                options=guest.mkfs_options.get(volume.fstype),
            )
        steps.mount_tree(item)
        steps.trust_host_keys(item, guest.name, "for the copies")
        copy_steps(item, "presync", guest.name, guest.migration_address or guest.address, "")
        fixups(item)
