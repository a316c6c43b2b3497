"""
cutover: the downtime window, each guest its own, kept to what depends on the final delta.
While the guest still runs, open its new disk, define its KVM domain (not autostarted),
trust its dom0's host keys at the destination and, for a staged integrity check, compare
the content of the warm copy with the running guest (through its read-only rsync module,
written again should a reboot since presync have taken it), let the destination's key in
on the dom0 and open the destination's connection to it (``ssh.master``: the window's
copies and checks share it instead of each making its own), and, last, copy what changed
in the guest since its last warm pass (the catch-up pass: the final copy in the window
then carries only what changed in its last seconds, however long ago presync ran; like
the final copy, it keeps the names it changed, for the fix-ups; for a staged check, the
content it brought is compared with the running guest; the guest's baseline, taken
before, comes with it and is kept with the journal there). Then stop the guest on
its dom0 and disable its autostart there, mount its LVs read-only on the dom0, copy the
last changes to the destination, check them, redo the in-place fix-ups the copies touched,
let go of the new volumes, then (only once the dom0 shows the guest stopped) start it at
the destination. What the start does not need waits until it boots: its autostart there,
the connection closed, the dom0's mounts and the key let go. Once it answers, announce its
addresses from inside it.

No guest is down while another's steps run: the wave's guests are cut over in rounds
(``xen2kvm.windows``). Guests whose hosts all differ share a round and go side by side;
one that shares a dom0 or a destination with an earlier guest waits for the next round,
still running on Xen. Each round's steps meet at barriers of their own hosts: no dom0
stops a guest once a host of the run failed, no guest starts at its destination before
its dom0 shows it stopped.

A guest's boot is not waited for inside its round: a watcher on its destination
(``journal.watch``) marks the downtime's end in the journal when its SSH port first
answers, and the next round's windows run meanwhile (unless that round uses a KVM host
where it boots whose inventory says ``windows_during_boot: false``: then it answers
first). The round after that waits for the mark (``journal.answered``), announces and
completes the guest. A guest that never answers fails its destination there, after the
next round's guests were started: the run stops, and a rollback or the next run takes it
from the journal.

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

from operations import baseline, flow, journal, preflight
from tasks import steps
from tasks.move import Move, Where, moves, window_order
from xen2kvm.journal import DOWNTIME_START, FINAL_COPY_DONE

# Before any window: each guest's baseline for the verify suite (it travels with the
# final copy), taken once per attempt while it still runs.
for move in moves("guest"):
    if not move.cutover_started:
        baseline.capture(name=f"{move.guest.name}: baseline before the cutover")
    # The catch-up pass (and a staged check's first half) reads the running guest through
    # the migration key: its module file (in the guest's /run) is written again if the
    # guest rebooted since presync.
    if not (move.migrated or move.cutover_started):
        steps.readable_guest(move, " (the catch-up pass before its window)")


def mine(where: Where, names: list[str]) -> list[Move]:
    """This host's moves, in the role ``where``, among the given guests."""
    return [move for move in moves(where) if move.guest.name in names]


def window(names: list[str]) -> None:
    """One round's windows, up to the start at the destination: its boot is watched from
    there while the run goes on."""
    sources, dests = mine("source", names), mine("dest", names)
    label = ", ".join(names)

    # 1. Within its budget, the downtime starts: the shutdown on the dom0.
    for move in dests:
        if not move.migrated and not move.cutover_started:  # the gate: within its budget
            forced = str(host.data.get("force_downtime", "")).lower() in ("1", "true", "yes")
            steps.projected_downtime(move, gate=True, force=forced)
        if not (move.migrated or move.final_copied):
            # Still up: the new disk opened, the dom0's host keys trusted.
            move.to.open(move)
            steps.trust_host_keys(move, move.source.name, move.dom0_dialled, "for the final copy")
        if not (move.migrated or move.cutover_started):
            # A staged integrity check's first half: the warm copy against the running guest.
            steps.integrity_before(move)
    flow.barrier(name=f"cutover of {label}: ready to stop", label=f"{label}: ready to stop")

    # Still up: the dom0 lets the destination's key in, and the destination holds a
    # connection to it for the window: no copy nor check in the downtime makes its own.
    for move in sources:
        if not (move.migrated or move.final_copied):
            steps.dom0_readable(move, readable=True)
    flow.barrier(
        name=f"cutover of {label}: the dom0s let the keys in",
        label=f"{label}: the dom0s let the keys in",
    )
    for move in dests:
        if not (move.migrated or move.final_copied):
            steps.dom0_connection(move, held=True)
        if not (move.migrated or move.cutover_started):
            # The last warm pass, as close to the stop as can be: the guest's changes since
            # presync, moved while it still runs; then what it leaves nothing to wait for.
            steps.copy(move, "catchup", move.guest.name, move.guest_dialled, "")
            steps.integrity_before(move, caught_up=True)
            move.to.caught_up(move)
        if not move.migrated:
            journal.milestone(
                name=f"{move.guest.name}: downtime starts (shutdown on {move.source.name})",
                guest=move.guest.name,
                step=DOWNTIME_START,
                state_dir=move.state_dir,
            )
    flow.barrier(name=f"cutover of {label}: downtime starts", label=f"{label}: downtime starts")
    for move in sources:
        steps.xen_state(move, move.source.name, move.guest.xen_config, running=False)
    flow.barrier(name=f"cutover of {label}: stopped on Xen", label=f"{label}: stopped on Xen")

    # 2. The stopped guest's LVs, read-only on the dom0 (where the destination's key reads).
    for move in sources:
        if not (move.migrated or move.final_copied):
            steps.source_mounts(move, f"read-only on {move.source.name}", mounted=True)
    flow.barrier(
        name=f"cutover of {label}: the source LVs are mounted read-only",
        label=f"{label}: the source LVs are mounted read-only",
    )

    # 3. The final copy and the fix-ups, then the new volumes let go.
    for move in dests:
        if move.migrated or move.final_copied:
            continue
        source = move.source
        base = f"/{move.guest.name}"
        steps.copy(move, "cutover", source.name, move.dom0_dialled, base, shared=True)
        steps.integrity(move, source.name, move.dom0_dialled, base, shared=True)
        move.to.fixups(move, window=True)
        move.to.close(move)
        journal.milestone(
            name=f"{move.guest.name}: the new volumes are complete and let go",
            guest=move.guest.name,
            step=FINAL_COPY_DONE,
            state_dir=move.state_dir,
        )
    flow.barrier(
        name=f"cutover of {label}: the final copies are done",
        label=f"{label}: the final copies are done",
    )

    # 4. Started at the destination once the dom0 shows the guest stopped; a watcher there
    #    marks the downtime's end when it answers.
    for move in dests:
        preflight.xen_stopped(
            name=f"{move.guest.name}: not running on {move.source.name} (split-brain guard)",
            guest=move.xen_domain,
            xen_host=move.source.name,
            devices=move.source_devices,
        )
        if move.migrated:
            move.to.end_state(move)
            continue
        move.to.start(move)
        journal.watch(
            name=f"{move.guest.name}: started; its answer watched for {move.to.under(move)}",
            **answer(move),
        )
    flow.barrier(name=f"cutover of {label}: started", label=f"{label}: started")

    # 5. While it boots: the rest of its end state at the destination (its autostart), the
    #    window's connection closed, its fix-ups recorded done (``fixups-done``: no copy
    #    comes after them), and the dom0 lets go of its LVs and of the key.
    for move in dests:
        if not move.migrated:
            move.to.end_state(move)
            steps.dom0_connection(move, held=False)
            steps.fixups_done(move)  # the window's fix-ups, recorded
    for move in sources:
        if not move.migrated:
            steps.source_let_go(move)
    flow.barrier(
        name=f"cutover of {label}: the dom0s let go of the source LVs",
        label=f"{label}: the dom0s let go of the source LVs",
    )


def answer(move: Move) -> dict:
    guest = move.guest
    return {
        "guest": guest.name,
        "address": guest.address,
        "port": guest.ssh.port,
        "timeout": guest.boot_timeout or move.to.connect_timeout,
        "step": move.to.answering,
        "state_dir": move.state_dir,
    }


def complete(names: list[str]) -> None:
    """An earlier round's guests, booted meanwhile: answering, their addresses announced
    from inside them, their moves complete."""
    dests, guests = mine("dest", names), mine("guest", names)
    label = ", ".join(names)
    for move in dests:
        if not move.migrated:
            journal.answered(
                name=f"{move.guest.name}: answers SSH {move.to.under(move)}",
                **answer(move),
                **move.to.watched(move),
            )
    flow.barrier(name=f"cutover of {label}: they answer", label=f"{label}: they answer")

    # From inside the moved guest: its addresses taken back; then the move is complete.
    for move in guests:
        if not move.migrated:
            steps.announce(move, move.to.where(move))
    flow.barrier(
        name=f"cutover of {label}: addresses announced", label=f"{label}: addresses announced"
    )
    for move in dests:
        journal.milestone(
            name=f"{move.guest.name}: move to {move.dest} complete",
            guest=move.guest.name,
            step=move.to.complete,
            state_dir=move.state_dir,
            requires=[move.guest.name],  # it announced its addresses in this run
        )


# Round by round: a round's windows, then the previous round's guests, which booted
# during them, answer and announce. The last round's are waited for on their own. A
# round that uses a host with ``windows_during_boot: false`` where the round before
# boots has them answer first.
for now, booted, first in host.loop(window_order()):
    answers = bool(mine("dest", booted) or mine("guest", booted))
    if first and answers:
        complete(booted)
    if mine("source", now) or mine("dest", now) or mine("guest", now):
        window(now)
    if answers and not first:
        complete(booted)
