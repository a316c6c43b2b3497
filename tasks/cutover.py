"""
cutover: the downtime window, kept to what depends on the final delta. Stop the guest on
its dom0 and disable its autostart there, mount its LVs read-only on the dom0, copy the
last changes to the destination, redo the in-place fix-ups, let go of the new volumes,
then (only once the dom0 shows the guest stopped) start it at the destination, wait for it
to answer and announce its addresses from inside it.

A guest whose move is complete only gets the operations that hold its end state: a
scheduled ``--dry`` run then shows drift (an autostart link back on the dom0, an edited
domain) and nothing else.

A run interrupted inside the window is finished by the next: the journal says how far it
got (``downtime-start``: the guest may be stopped, so no warm copy and no new baseline;
``final-copy-done``: the new volumes are complete and let go, only the start is left). A
guest that cannot be reached then (stopped on Xen) does not stop the run; its move is
recorded complete only once it has announced its addresses from its destination.
"""

from pyinfra import host

from operations import baseline, flow, journal, net, preflight
from tasks import steps
from tasks.move import moves
from xen2kvm.journal import DOWNTIME_START, FINAL_COPY_DONE

# 0. The guest's baseline for the verify suite (it travels with the final copy), then note
#    when the downtime starts: right before the shutdown.
for move in moves("guest"):
    if not move.cutover_started:  # taken once per attempt, before the guest stops
        baseline.capture(name=f"{move.guest.name}: baseline before the cutover")

for move in moves("dest"):
    if not move.migrated and not move.cutover_started:  # the gate: within its budget
        forced = str(host.data.get("force_downtime", "")).lower() in ("1", "true", "yes")
        steps.projected_downtime(move, gate=True, force=forced)
    if not move.migrated:
        journal.milestone(
            name=f"{move.guest.name}: downtime starts (shutdown on {move.source.name})",
            guest=move.guest.name,
            step=DOWNTIME_START,
            state_dir=move.state_dir,
        )

flow.barrier(name="cutover: downtime starts", label="downtime starts")

# 1. Stop on its dom0: the downtime starts.
for move in moves("source"):
    steps.xen_state(move, move.source.name, move.guest.xen_config, running=False)

flow.barrier(name="cutover: the Xen guests are stopped", label="the Xen guests are stopped")

# 2. The stopped guest's LVs, read-only on the dom0, readable by the destination's key.
for move in moves("source"):
    if move.migrated or move.final_copied:
        continue
    steps.stopped_source(move, readable=True)

flow.barrier(
    name="cutover: the source LVs are mounted read-only",
    label="the source LVs are mounted read-only",
)

# 3. The final copy and the fix-ups, then the new volumes let go.
for move in moves("dest"):
    if move.migrated or move.final_copied:
        continue
    source = move.source
    move.to.open(move)
    steps.trust_host_keys(move, source.name, move.dom0_dialled, "for the final copy")
    steps.copy(move, "cutover", source.name, move.dom0_dialled, f"/{move.guest.name}")
    steps.integrity(move, source.name, move.dom0_dialled, f"/{move.guest.name}")
    move.to.fixups(move)
    move.to.close(move)
    journal.milestone(
        name=f"{move.guest.name}: the new volumes are complete and let go",
        guest=move.guest.name,
        step=FINAL_COPY_DONE,
        state_dir=move.state_dir,
    )

flow.barrier(name="cutover: the final copies are done", label="the final copies are done")

# 4. The dom0 lets go of the stopped guest's LVs and of the key.
for move in moves("source"):
    if move.migrated:
        continue
    steps.stopped_source(move, readable=False)

flow.barrier(
    name="cutover: the dom0s let go of the source LVs",
    label="the dom0s let go of the source LVs",
)

# 5. Start at the destination once the dom0 shows the guest stopped (all of the wave's
#    guests, then wait for each: they boot side by side).
for move in moves("dest"):
    preflight.xen_stopped(
        name=f"{move.guest.name}: not running on {move.source.name} (split-brain guard)",
        guest=move.xen_domain,
        xen_host=move.source.name,
        devices=move.source_devices,
    )
    move.to.end_state(move)
for move in moves("dest"):
    if not move.migrated:
        under = move.to.under(move)
        net.wait_for_port(
            name=f"{move.guest.name}: answers SSH {under}",
            address=move.guest.address,
            port=move.guest.ssh.port,
            timeout=move.to.connect_timeout,
        )
        journal.milestone(
            name=f"{move.guest.name}: downtime ends (SSH answers {under})",
            guest=move.guest.name,
            step=move.to.answering,
            state_dir=move.state_dir,
        )

flow.barrier(name="cutover: the guests answer", label="the guests answer")

# 6. From inside the moved guest: take its addresses back.
for move in moves("guest"):
    if not move.migrated:
        steps.announce(move, move.to.where(move))

flow.barrier(name="cutover: addresses announced", label="addresses announced")

for move in moves("dest"):
    journal.milestone(
        name=f"{move.guest.name}: move to {move.dest} complete",
        guest=move.guest.name,
        step=move.to.complete,
        state_dir=move.state_dir,
        requires=[move.guest.name],  # it announced its addresses in this run
    )
