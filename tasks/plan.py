"""
plan: checks only, no changes. Every host of the run has the commands its role(s) need
(``xen2kvm.requirements``), each destination can take its moves (a KVM host has room in
its VG, no other VG named as a guest VG it will map, libvirt and the bridge), the dom0s
hold parsable configs for the wave's guests, the guests answer and run the planned
userland (a Debian release xen2kvm is made for; to KVM, without dracut:
``xen2kvm.guestkinds``). What a guest's Xen config and disks hold that no move can
recreate (its own LVM, LUKS, btrfs) is refused while its move is planned
(``tasks.move``), before any of these.
"""

from operations import preflight
from tasks import steps
from tasks.move import moves

# Every host's missing commands at once, one refusal naming them all (a refusal while
# pyinfra prepares the run ends it: one host's would hide the others'); then each host's
# own check, for the record.
steps.refuse_missing_commands()
if wanted := steps.needs():
    preflight.commands(name="the commands this run needs are installed", needs=wanted)

at_dest = moves("dest")  # a host is the destination of one kind: KVM host or dom0
if at_dest:
    at_dest[0].to.check(at_dest)

for move in moves("source"):
    preflight.xen_config(
        name=f"{move.guest.name} = Xen domain {move.xen_domain} on {move.source.name}: "
        "its config parses",
        guest=move.guest.name,
        path=move.guest.xen_config,
        rehome=move.to.kind == "dom0",
    )
    if move.volumes and not move.migrated:
        preflight.source_unused(
            name=f"{move.guest.name}: no Xen domain on {move.source.name} but "
            f"{move.xen_domain} uses its LVs",
            guest=move.guest.name,
            domain=move.xen_domain,
            devices=move.source_devices,
            running=True,
        )

for move in moves("dest"):  # what a cutover would cost now (the gate is in the cutover)
    if not move.migrated:
        steps.projected_downtime(move, gate=False)

for move in moves("guest"):
    if not move.migrated:
        preflight.guest(
            name=f"{move.guest.name} answers and runs a Debian release xen2kvm moves",
            arch=move.guest.arch,
            installs_kernel=move.to.installs_kernel,
        )
