"""
plan: checks only, no changes. Every host of the run has the commands its role(s) need
(``xen2kvm.requirements``), each destination can take its moves (a KVM host has room in
its VG, libvirt and the bridge), the dom0s hold parsable configs for the wave's guests,
the guests answer and run the planned userland.
"""

from operations import preflight
from tasks import steps
from tasks.move import moves
from xen2kvm import requirements


def needs() -> dict[str, str]:
    """What this host needs for the moves of the run not yet complete, in every role it
    has in them (a dom0 may be a source and a rehome's destination: the union)."""
    roles, filesystems, lvm = [], [], False
    for move in moves("dest"):
        if not move.migrated:
            roles.append(move.to.dest_role)
            filesystems += move.to.filesystems(move)
            lvm = lvm or move.to.makes_lvs(move)
    if any(not move.migrated for move in moves("source")):
        roles.append(requirements.SOURCE)
    roles += [move.to.guest_role for move in moves("guest") if not move.migrated]
    return requirements.needs(roles, filesystems, lvm)


if wanted := needs():
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
        preflight.guest(name=f"{move.guest.name} answers", arch=move.guest.arch)
