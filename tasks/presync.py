"""
presync: no downtime, repeatable. On each destination, the guest's new volumes (a new disk
in the planned layout on a KVM host, new LVs on a dom0), mounted as a tree; then each
filesystem copied from the running guest with rsync, and the fix-ups that the final copy
will not undo. Each rerun sends only the difference.

The plan's inputs are frozen on the destination first: every later run builds the same.
"""

from pyinfra.api.exceptions import OperationError

from operations import flow, journal, plans, sync
from tasks import steps
from tasks.move import frozen_inputs, moves

# pyinfra runs operations in the order of these lines, across hosts: the destination's
# key first, then the guests let it in, then the destination builds and copies.

# A guest whose cutover an earlier run began is left to the cutover: it may be stopped.
todo = [move for move in moves("dest") if not move.migrated and not move.cutover_started]
if todo:
    journal.tool(name="x2k-journal, the migration journal's tool")
    sync.key(name="the migration key", path=todo[0].key)

flow.barrier(name="presync: the migration keys exist", label="migration keys")

for move in moves("guest"):
    if move.migrated or move.cutover_started:
        continue
    steps.readable_guest(move)

flow.barrier(name="presync: the guests let their destination read them", label="access")

for move in todo:
    guest, inputs = move.guest, move.inputs
    assert inputs is not None  # moves("dest") needs them
    if inputs.features is None and frozen_inputs(move.dest, move.state_dir, guest) is None:
        raise OperationError(
            f"{guest.name}: the features of its ext filesystems were not read (dumpe2fs on "
            f"{guest.xen_host}): apt-get install e2fsprogs there, then run again"
        )
    plans.frozen(
        name=f"{guest.name}: freeze its plan",
        guest=guest.name,
        xen_config=inputs.xen_config,
        fstab=inputs.fstab,
        sizes=inputs.sizes,
        filesystems=inputs.filesystems,
        features=inputs.features,
        state_dir=move.state_dir,
    )
    move.to.build(move)
    steps.trust_host_keys(move, guest.name, move.guest_dialled, "for the copies")
    for warm_pass in range(1, steps.WARM_PASSES + 1):
        steps.copy(move, "presync", guest.name, move.guest_dialled, "", warm_pass=warm_pass)
    move.to.fixups(move)
    steps.fixups_done(move)
