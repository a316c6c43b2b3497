"""
plan: checks only, no changes. Every host of the run has the commands its role(s) need
(``xen2kvm.requirements``), each destination can take its moves (a KVM host has room in
its VG, libvirt and the bridge), the dom0s hold parsable configs for the wave's guests,
the guests answer and run the planned userland.
"""

from operations import preflight
from tasks.move import moves
from xen2kvm import requirements


def needs() -> dict[str, str]:
    """What this host needs for the moves of the run not yet complete, in every role it
    has in them (a dom0 may be a source and a rehome's destination: the union)."""
    roles, filesystems, lvm = [], [], False
    for move in moves("dest"):
        if move.migrated:
            continue
        if move.to.kind == "kvm":
            roles.append(requirements.KVM_HOST)
            filesystems += ["ext4", *(volume.fstype for volume in move.need_plan().volumes)]
        else:
            roles.append(requirements.REHOME)
            filesystems += [volume.fstype for volume in move.volumes]
            lvm = lvm or bool(getattr(move.dest_spec, "vg", None))
    if any(not move.migrated for move in moves("source")):
        roles.append(requirements.SOURCE)
    for move in moves("guest"):
        if not move.migrated:
            kvm = move.to.kind == "kvm"
            roles.append(requirements.GUEST if kvm else requirements.REHOME_GUEST)
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

for move in moves("guest"):
    if not move.migrated:
        preflight.guest(name=f"{move.guest.name} answers", arch=move.guest.arch)
